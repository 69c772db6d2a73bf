"""``spoon-llm audit verify``: check the admin audit log's HMAC chain from the shell.

It opens the same store as ``spoon-llm serve`` with the same configuration (``--config``): ``admin.db`` next to the
key store, or Redis when ``[state] backend = "redis"``; the chain key comes from ``[server] audit_secret`` (or
``SPOON_LLM_AUDIT_SECRET``), else from the master key, as the gateway derives it. Exit status 0: intact; 1: the
first bad record is named; 2: the log or its key could not be read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from ...errors import LLMError

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Check the gateway's tamper-evident audit log.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)


@audit_app.command("verify")
def verify(
    config: Annotated[str | None, typer.Option("--config", "-c", help="Configuration file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every record's HMAC and its link to the one before; name the first bad record."""
    from ..key_commands import _config
    from .audit import audit_secret, verify_chain
    from .store import open_admin_store

    try:
        cfg = _config(config)
        server = cfg.server.resolved()
        secret = audit_secret(server.audit_secret.get_secret_value() if server.audit_secret is not None else None,
                              server.master_key_value,
                              server.secret.get_secret_value() if server.secret is not None else None)

        async def read() -> tuple[list[dict[str, object]], str]:
            store = open_admin_store(cfg)
            try:
                return await store.audit_records(), store.describe()
            finally:
                await store.close()

        records, where = asyncio.run(read())
    except (LLMError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    report = verify_chain(records, secret)
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "records": report.records, "bad_seq": report.bad_seq,
                               "reason": report.reason, "store": where}))
    elif report.ok:
        typer.echo(f"audit log intact: {report.records} record{'s' if report.records != 1 else ''} verified ({where})")
    else:
        typer.echo(f"audit log TAMPERED: record {report.bad_seq}: {report.reason} ({where})", err=True)
    if not report.ok:
        raise typer.Exit(code=1)
