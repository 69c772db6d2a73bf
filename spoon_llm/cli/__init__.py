"""The ``spoon-llm`` command line (extra ``cli``: typer and rich).

One module per command group: :mod:`.chat`, :mod:`.batch`, :mod:`.models` (``models`` and ``health``),
:mod:`.costs`, :mod:`.simulate` and :mod:`.configuration` (``providers``, ``config``, ``demo``); the gateway's
``serve`` commands join when the ``server`` extra is installed. Exit codes and output conventions are described
in :mod:`._common`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

try:
    import typer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    _missing: ImportError | None = exc
else:
    _missing = None

__all__ = ["app", "main"]

EPILOG = ("Exit codes: 0 success; 1 failure (a request, a batch line or a health check failed, or the configuration "
          "is invalid); 2 bad command line; 130 interrupted.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("spoon-llm")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
            number = "unknown"
        sys.stdout.write(f"spoon-llm {number} (Python {sys.version.split()[0]})\n")
        raise typer.Exit()


def _build_app() -> typer.Typer:
    from . import batch, chat, configuration, costs, models, simulate

    app = typer.Typer(
        name="spoon-llm",
        help="spoon-llm: one interface over many LLM providers.",
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                              help="Print the version and exit.")] = False,
    ) -> None:
        """spoon-llm: one interface over many LLM providers."""

    for module in (chat, batch, models, costs, configuration, simulate):
        module.register(app)
    _register_server_commands(app)
    return app


def _register_server_commands(app: Any) -> None:
    """Add the gateway's commands (``serve`` ...) when the server extra and its module are installed."""
    import importlib

    try:
        commands = importlib.import_module("spoon_llm.server.commands")
    except ImportError:  # the server extra (or the module) is not installed: no gateway commands
        return
    commands.register(app)


app = _build_app() if _missing is None else None


def main() -> None:
    """Entry point of the ``spoon-llm`` script."""
    if app is None:
        sys.stderr.write('error: the command line needs its extra (fix: pip install "spoon-llm[cli]")\n')
        raise SystemExit(2)
    app()
