"""The gateway's commands for the ``spoon-llm`` command line: ``serve`` and (when present) ``keys`` and ``audit``."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` (and the ``keys`` and ``audit`` groups) to the ``spoon-llm`` app."""

    @app.command("serve")
    def serve(
        config: Annotated[str | None, typer.Option(
            "--config", "-c", help="Configuration file (default: $SPOON_LLM_CONFIG, then spoon_llm.toml).")] = None,
        host: Annotated[str | None, typer.Option(
            help="Address to bind (default: [server] host, 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(
            min=0, max=65535, help="Port (default: [server] port, 4000).")] = None,
        workers: Annotated[int | None, typer.Option(
            min=1, max=256, help="Worker processes (default: [server] workers, 1).")] = None,
    ) -> None:
        """Run the OpenAI- and Anthropic-compatible gateway over the configured providers."""
        from ..errors import ConfigurationError
        from ._run import serve as run

        try:
            run(config, host=host, port=port, workers=workers)
        except ConfigurationError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        except ImportError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None

    try:
        key_commands = importlib.import_module("spoon_llm.server.key_commands")
    except ImportError:
        return
    app.add_typer(key_commands.keys_app, name="keys")
    audit_commands = importlib.import_module("spoon_llm.server.admin.commands")
    app.add_typer(audit_commands.audit_app, name="audit")
