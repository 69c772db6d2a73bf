"""``manager.get_status()["metrics"]``: the pooled module's status figures, read from a metrics collector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .metrics import MetricsCollector

__all__ = ["status_metrics"]


def status_metrics(collector: MetricsCollector | None, stats: dict[str, Any]) -> dict[str, Any]:
    """The pooled module's status figures from ``collector``.

    Requests (total, successful, failed), tokens, latency (min/max/average, seconds), errors by type and usage by
    model; with monitoring off only the manager's own counters (``stats``) are known.

    Requests count what the application asked for (one ``chat`` however many attempts it took); tokens, errors
    and usage by model count the provider calls behind them.
    """
    if collector is None:
        return {"total_requests": stats["requests"], "successful_requests": stats["successes"],
                "failed_requests": stats["failures"], "monitoring": False}
    summary = collector.get_summary()
    requests = summary["requests"]
    latency = requests["latency"]
    by_model = {
        model: {"requests": s["total_requests"], "successful_requests": s["successful_requests"],
                "failed_requests": s["failed_requests"], "input_tokens": s["tokens"]["input"],
                "output_tokens": s["tokens"]["output"], "total_tokens": s["tokens"]["total"], "cost": s["total_cost"]}
        for model, s in collector.get_all_stats(by="model").items()
    }
    return {
        "total_requests": requests["total"],
        "successful_requests": requests["successful"],
        "failed_requests": requests["failed"],
        "input_tokens": summary["tokens"]["input"],
        "output_tokens": summary["tokens"]["output"],
        "total_tokens": summary["tokens"]["total"],
        "latency": {"min": latency["min"], "max": latency["max"], "average": latency["avg"],
                    "p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"]},
        "min_latency": latency["min"],
        "max_latency": latency["max"],
        "avg_latency": latency["avg"],
        "errors_by_type": dict(summary["error_counts"]),
        "usage_by_model": by_model,
        "total_cost": summary["total_cost"],
        "monitoring": True,
    }
