"""The library's process-wide metrics collector in a gateway: fed only when the configuration names it."""

from __future__ import annotations

from pathlib import Path

from spoon_llm.monitoring import get_metrics_collector
from spoon_llm.server.app import create_app

PROVIDERS = {"openai": {"api_key": "sim-gateway-0123456789", "model": "gpt-4o-mini"}}


async def test_the_collector_is_not_fed_by_default(tmp_path: Path) -> None:
    app = create_app({"providers": PROVIDERS, "state": {"path": str(tmp_path / "state.db")}})
    await app.startup()
    try:
        assert app.manager is not None and app.manager.metrics is None
        assert "request_end" not in app.manager.events.kinds  # no request-level event is built per request
    finally:
        await app.shutdown()


async def test_monitoring_true_feeds_the_collector(tmp_path: Path) -> None:
    app = create_app({"providers": PROVIDERS, "monitoring": True, "state": {"path": str(tmp_path / "state.db")}})
    await app.startup()
    try:
        assert app.manager is not None and app.manager.metrics is get_metrics_collector()
        assert "request_end" in app.manager.events.kinds
    finally:
        await app.shutdown()
