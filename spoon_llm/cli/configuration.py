"""``spoon-llm providers``, ``config show``, ``config validate`` and ``demo``."""

from __future__ import annotations

import warnings
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._common import EXIT_FAILED, ConfigOption, load_config, one_line, stderr_console, stdout_console, warn


def register(app: typer.Typer) -> None:
    """Add ``providers``, ``config show|validate`` and ``demo`` to ``app``."""
    config_app = typer.Typer(help="Show or validate configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @app.command("providers")
    def providers(config: ConfigOption = None) -> None:
        """List registered providers (built-in and plugins), their capabilities and whether they are configured."""
        from ..registry import get_global_registry

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry = get_global_registry()
            entries = registry.entries()
        manager = load_config(config)
        configured = set(manager.list_configured_providers())
        configured_types = {manager.config.providers[n].provider_type: n for n in configured}
        table = Table(title="spoon-llm providers")
        table.add_column("name", style="bold", overflow="fold")
        table.add_column("source", overflow="fold")
        table.add_column("capabilities", overflow="fold")
        table.add_column("configured")
        for entry in entries:
            if entry.name in configured:
                state = "yes"
            elif entry.name in configured_types:
                state = f"yes (as {configured_types[entry.name]})"
            else:
                state = "no"
            caps = ", ".join(c.value for c in entry.capabilities)
            table.add_row(Text(entry.name), Text(entry.source), Text(caps), Text(state))
        for name in sorted(configured - {e.name for e in entries}):
            section = manager.config.providers[name]
            table.add_row(Text(name), Text(f"config (type {section.provider_type})"), "", "yes")
        stdout_console().print(table)
        for warning in caught:
            warn(str(warning.message))

    @config_app.command("show")
    def config_show(
        config: ConfigOption = None,
        all_values: Annotated[bool, typer.Option("--all", help="Also show values left at their defaults.")] = False,
    ) -> None:
        """Show the merged configuration with where each value came from (secrets are never printed)."""
        manager = load_config(config)
        table = Table(title=Text(f"configuration ({manager.source_name or 'environment only'})"))
        table.add_column("key", style="bold", overflow="fold")
        table.add_column("value", overflow="fold")
        table.add_column("source", overflow="fold")
        for row in manager.describe():
            if all_values or row.source != "default":
                table.add_row(Text(row.key), Text(row.value), Text(row.source))
        stdout_console().print(table)

    @config_app.command("validate")
    def config_validate(
        file: Annotated[str | None, typer.Argument(help="File to validate (default: the usual lookup).")] = None,
    ) -> None:
        """Validate a configuration file; exits 1 with the file, key and fix on the first problem."""
        from ..config.validate import problems

        manager = load_config(file)
        found = problems(manager)
        if found:
            err = stderr_console()
            for problem in found:  # one line each: file, key, what is wrong and the fix
                err.print(Text.assemble(("error: ", "bold red"), one_line(str(problem))), soft_wrap=True)
            raise typer.Exit(code=EXIT_FAILED)
        names = ", ".join(manager.list_configured_providers()) or "none"
        stdout_console().print(Text.assemble(("ok", "green"), f": {manager.source_name or 'environment'} is valid; "
                                                              f"providers: {names}"), soft_wrap=True)

    @app.command("demo")
    def demo() -> None:
        """Offline tour: chat, streaming, tools, fallback, rate limits and batching against a local simulator."""
        from ..demo import main as run_demo

        run_demo()
