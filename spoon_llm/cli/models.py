"""``spoon-llm models`` and ``spoon-llm health``: what is configured, what the providers list, and what is up."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ._common import EXIT_FAILED, ConfigOption, build_manager, fail, load_config, one_line, stdout_console, warn

if TYPE_CHECKING:
    from ..manager import LLMManager
    from ..pricing.book import PriceBook
    from ..routing.deployment import DeploymentState


def price_of(prices: PriceBook, model: str | None, provider_type: str, provider: str) -> dict[str, float] | None:
    """Input and output price per million tokens, when a price source knows the model."""
    if not model:
        return None
    rates = prices.rates(model, provider_type, provider=provider)
    if rates is None:
        return None
    return {"input_per_1m": rates.base.input * 1e6, "output_per_1m": rates.base.output * 1e6}


def price_text(price: dict[str, float] | None) -> str:
    """``$2.50 / $10.00`` (input / output per million tokens), ``-`` when unknown."""
    if price is None:
        return "-"
    return f"${price['input_per_1m']:.2f} / ${price['output_per_1m']:.2f}"


async def listed_models(manager: LLMManager, states: list[DeploymentState]) -> dict[str, list[str] | str]:
    """Per provider: the ids its ``/models`` endpoint reports, or why it could not be asked."""
    seen: dict[str, DeploymentState] = {}
    for state in states:
        seen.setdefault(state.provider_name, state)

    async def ask(state: DeploymentState) -> list[str] | str:
        try:
            instance = await state.provider(manager.registry)
            lister = getattr(instance, "list_models", None)
            if lister is None:
                return "this provider does not list models"
            return sorted(str(m) for m in await lister())
        except Exception as exc:  # an LLMError: reported per provider, the others still listed
            return one_line(str(exc)) or type(exc).__name__

    try:
        answers = await asyncio.gather(*(ask(s) for s in seen.values()))
    finally:
        await manager.cleanup()
    return dict(zip(seen, answers, strict=True))


def register(app: typer.Typer) -> None:
    """Add ``models`` and ``health`` to ``app``."""

    @app.command("models")
    def models(
        provider: Annotated[str | None, typer.Argument(help="Only this provider (section name).")] = None,
        offline: Annotated[bool, typer.Option("--offline", help="Do not ask the providers' /models "
                                                                "endpoints.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """List model aliases, configured models and what the providers' /models endpoints report, with prices."""
        from ..pricing.book import PriceBook

        cfg = load_config(config)
        if provider is not None and provider not in cfg.config.providers:
            known = ", ".join(sorted(cfg.config.providers)) or "none"
            fail(f"provider {provider!r} is not configured (configured: {known})",
                 "name a [providers.<name>] section, or run `spoon-llm providers`", 2)
        manager = build_manager(cfg)
        prices = PriceBook.from_config(cfg.config)
        rows: list[dict[str, Any]] = []
        for alias, route in cfg.config.models.items():
            targets = [str(t) for t in route.targets]
            if provider is not None and not any(t.provider == provider for t in route.targets):
                continue
            rows.append({"name": alias, "kind": "alias", "provider": None, "serves": targets,
                         "fallback": route.fallback, "price": None})
        states = [s for s in manager.router.deployments.values() if provider in (None, s.provider_name)]
        configured: set[tuple[str, str]] = set()
        for state in states:
            model = state.model or ""
            configured.add((state.provider_name, model))
            rows.append({"name": model or "(provider default)", "kind": "configured", "provider": state.provider_name,
                         "deployment": state.name,
                         "price": price_of(prices, state.model, state.provider_type, state.provider_name)})
        listed: dict[str, list[str] | str] = {}
        if not offline and states:
            listed = asyncio.run(listed_models(manager, states))
        types = {s.provider_name: s.provider_type for s in states}
        for name, found in listed.items():
            if isinstance(found, str):
                warn(f"{name}: could not list models: {found}")
                continue
            for model in found:
                if (name, model) not in configured:
                    rows.append({"name": model, "kind": "listed", "provider": name,
                                 "price": price_of(prices, model, types[name], name)})
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        table = Table(title="models")
        table.add_column("name", style="bold", overflow="fold", ratio=3)
        table.add_column("kind", min_width=10)
        table.add_column("provider / targets", overflow="fold", ratio=2)
        table.add_column("$/1M in / out", overflow="fold", ratio=1)
        for row in rows:
            where = ", ".join(row["serves"]) if row["kind"] == "alias" else row["provider"]
            if row.get("fallback"):
                where += " (fallback: " + ", ".join(row["fallback"]) + ")"
            table.add_row(Text(row["name"]), row["kind"], Text(where), price_text(row["price"]))
        stdout_console().print(table)

    @app.command("health")
    def health(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Check every deployment at once (no tokens spent: model listings only); exit 1 if any is down."""
        cfg = load_config(config)
        manager = build_manager(cfg)

        async def check() -> tuple[dict[str, bool], dict[str, str], float]:
            started = time.perf_counter()
            try:
                results = await manager.health_check_all()
                reasons: dict[str, str] = {}
                for name, ok in results.items():
                    if not ok:
                        state = manager.router.deployments[name]
                        try:
                            instance = await state.provider(manager.registry)
                            error = getattr(instance, "last_health_error", None)
                        except Exception as exc:  # the provider could not even be built
                            error = exc
                        reasons[name] = one_line(str(error)) if error is not None else "health check failed"
                return results, reasons, time.perf_counter() - started
            finally:
                await manager.cleanup()

        results, reasons, elapsed = asyncio.run(check())
        rows: list[dict[str, Any]] = [{"deployment": name, "provider": manager.router.deployments[name].provider_name,
                 "model": manager.router.deployments[name].model, "up": ok, "error": reasons.get(name)}
                for name, ok in results.items()]
        if as_json:
            sys.stdout.write(json.dumps({"healthy": all(results.values()), "seconds": round(elapsed, 3),
                                         "deployments": rows}, indent=2) + "\n")
        else:
            table = Table(title=f"health ({elapsed:.2f} s)")
            table.add_column("deployment", style="bold", overflow="fold")
            table.add_column("model", overflow="fold")
            table.add_column("status")
            table.add_column("error", overflow="fold")
            for row in rows:
                status = Text("up", style="green") if row["up"] else Text("down", style="red")
                table.add_row(Text(row["deployment"]), Text(row["model"] or "-"), status, Text(row["error"] or ""))
            stdout_console().print(table)
        if not all(results.values()):
            raise typer.Exit(EXIT_FAILED)
