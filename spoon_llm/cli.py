"""The ``spoon-llm`` command line: list providers, show and validate configuration, run the simulator."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    _missing: ImportError | None = exc
else:
    _missing = None

__all__ = ["app", "main"]


def _build_app() -> typer.Typer:
    app = typer.Typer(
        name="spoon-llm",
        help="spoon-llm: one interface over many LLM providers.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    config_app = typer.Typer(help="Show or validate configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")
    console = Console()
    err_console = Console(stderr=True)

    def load_config(path: str | None) -> Any:
        from .config import ConfigurationManager
        from .errors import ConfigurationError

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                manager = ConfigurationManager(path)
            for warning in caught:
                err_console.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)
            return manager
        except ConfigurationError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(code=1) from None

    @app.command("providers")
    def providers(
        config: Annotated[str | None, typer.Option("--config", "-c", help="Configuration file.")] = None,
    ) -> None:
        """List registered providers (built-in and plugins), their capabilities and whether they are configured."""
        from .registry import get_global_registry

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry = get_global_registry()
            entries = registry.entries()
        manager = load_config(config)
        configured = set(manager.list_configured_providers())
        configured_types = {manager.config.providers[n].provider_type: n for n in configured}
        table = Table(title="spoon-llm providers")
        table.add_column("name", style="bold")
        table.add_column("source")
        table.add_column("capabilities")
        table.add_column("configured")
        for entry in entries:
            if entry.name in configured:
                state = "yes"
            elif entry.name in configured_types:
                state = f"yes (as {configured_types[entry.name]})"
            else:
                state = "no"
            caps = ", ".join(c.value for c in entry.capabilities)
            table.add_row(entry.name, entry.source, caps, state)
        for name in sorted(configured - {e.name for e in entries}):
            section = manager.config.providers[name]
            table.add_row(name, f"config (type {section.provider_type})", "", "yes")
        console.print(table)
        for warning in caught:
            err_console.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)

    @config_app.command("show")
    def config_show(
        config: Annotated[str | None, typer.Option("--config", "-c", help="Configuration file.")] = None,
        all_values: Annotated[bool, typer.Option("--all", help="Also show values left at their defaults.")] = False,
    ) -> None:
        """Show the merged configuration with where each value came from (secrets are never printed)."""
        manager = load_config(config)
        table = Table(title=f"configuration ({manager.source_name or 'environment only'})")
        table.add_column("key", style="bold")
        table.add_column("value")
        table.add_column("source")
        for row in manager.describe():
            if all_values or row.source != "default":
                table.add_row(row.key, row.value, row.source)
        console.print(table)

    @config_app.command("validate")
    def config_validate(
        file: Annotated[str | None, typer.Argument(help="File to validate (default: the usual lookup).")] = None,
    ) -> None:
        """Validate a configuration file; exits non-zero with the file, key and fix on the first problem."""
        manager = load_config(file)
        names = ", ".join(manager.list_configured_providers()) or "none"
        console.print(f"[green]ok[/green]: {manager.source_name or 'environment'} is valid; providers: {names}",
                      highlight=False)

    @app.command("simulate")
    def simulate(
        port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
        host: Annotated[str, typer.Option("--host", help="Loopback address to bind.")] = "127.0.0.1",
    ) -> None:
        """Serve the local provider simulator (OpenAI, Anthropic and Gemini wire formats) until interrupted."""
        from .testing import serve_forever

        def ready(bound: int) -> None:
            console.print(f"provider simulator listening on http://{host}:{bound}", highlight=False)
            console.print(f"  OpenAI-compatible: http://{host}:{bound}/v1", highlight=False)
            console.print(f"  Anthropic:         http://{host}:{bound}", highlight=False)
            console.print(f"  Gemini:            http://{host}:{bound}", highlight=False)

        try:
            serve_forever(host=host, port=port, ready_callback=ready)
        except KeyboardInterrupt:
            pass

    @app.command("demo")
    def demo() -> None:
        """Offline tour: chat, streaming, tools, fallback, rate limits and batching against a local simulator."""
        from .demo import main as run_demo

        run_demo()

    return app


app = _build_app() if _missing is None else None


def main() -> None:
    """Entry point of the ``spoon-llm`` script."""
    if app is None:
        sys.stderr.write('spoon-llm: the command line needs its extra: pip install "spoon-llm[cli]"\n')
        raise SystemExit(2)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
