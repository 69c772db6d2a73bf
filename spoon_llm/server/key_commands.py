"""``spoon-llm keys create|list|show|revoke``: manage the gateway's virtual keys from the shell.

The commands open the same key store as ``spoon-llm serve`` with the same configuration (``--config``): the SQLite
file next to the state database, or Redis when ``[state] backend = "redis"``. ``create`` prints the plain key once;
nothing else ever prints it (the store only has its hash).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ..errors import LLMError, ValidationError
from .keys import KeyStore, VirtualKey, new_key, open_key_store, server_secret

if TYPE_CHECKING:
    from ..config.models import SpoonConfig

__all__ = ["keys_app", "parse_expiry"]

_T = TypeVar("_T")

keys_app = typer.Typer(help="Create, list, show and revoke the gateway's virtual keys.", no_args_is_help=True,
                       add_completion=False, pretty_exceptions_enable=False)

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Configuration file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, now: float | None = None) -> float:
    """``30d``, ``12h``, ``45m``, ``90s``, ``2w`` from now, or an ISO date/time (UTC unless it says otherwise)."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        when = now + float(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"--expires {text!r} is neither a duration (30d, 12h, 45m) nor an ISO date "
                                  "(2026-01-31 or 2026-01-31T12:00:00Z)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        when = moment.timestamp()
    try:  # a moment a date can show (listing the key prints it)
        datetime.fromtimestamp(when, timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise ValidationError(f"--expires {text!r} is beyond the dates this can hold (up to year 9999)") from None
    return when


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _config(path: str | None) -> SpoonConfig:
    from ..config import ConfigurationManager

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = ConfigurationManager(path).config
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return config


def _secret(config: SpoonConfig) -> bytes:
    resolved = config.server.resolved()
    secret = resolved.secret.get_secret_value() if resolved.secret is not None else None
    return server_secret(secret, resolved.master_key_value)


def _run(path: str | None, work: Callable[[SpoonConfig, KeyStore], Awaitable[_T]]) -> _T:
    try:
        config = _config(path)

        async def main() -> _T:
            store = open_key_store(config)
            try:
                return await work(config, store)
            finally:
                await store.close()

        return asyncio.run(main())
    except LLMError as exc:
        raise _fail(str(exc)) from None


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    try:
        return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):  # a record written before expiries were bounded
        return f"{moment:.0f} (epoch seconds)"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _describe(record: VirtualKey) -> list[tuple[str, str]]:
    limits = [(name, str(value)) for name, value in (("rpm", record.rpm), ("tpm", record.tpm),
                                                     ("max_concurrent", record.max_concurrent)) if value is not None]
    budget = (f"${record.budget_limit:.6g} {record.budget_period}" if record.budget_limit is not None else "none")
    return [("alias", record.alias), ("key", record.display), ("id", record.id), ("role", record.role),
            ("status", record.status()),
            ("models", ", ".join(record.models) if record.models is not None else "any"),
            ("budget", budget), *limits, ("expires", _when(record.expires_at)),
            ("metadata", ", ".join(f"{k}={v}" for k, v in sorted(record.metadata.items())) or "-"),
            ("created", _when(record.created_at)), ("revoked", _when(record.revoked_at))]


def _print_record(record: VirtualKey) -> None:
    for name, value in _describe(record):
        typer.echo(f"{name + ':':<16}{value}")


@keys_app.command("create")
def create(
    alias: Annotated[str, typer.Argument(help="Unique name of the key (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option("--role", help="user or admin.")] = "user",
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A model or alias the key may use (repeat; '*' wildcards). Default: any.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Spending limit in USD.")] = None,
    period: Annotated[str, typer.Option("--period", help="Budget period: total, daily or monthly.")] = "total",
    rpm: Annotated[int | None, typer.Option("--rpm", help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="Tokens (input + output) per minute.")] = None,
    max_concurrent: Annotated[int | None, typer.Option("--max-concurrent", help="Requests at once.")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Duration from now (30d, 12h) or ISO date/time.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Metadata 'user' (an economics tag).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Metadata 'team' (an economics tag).")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="More metadata as key=value (repeat).")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once: only its hash is stored, so it cannot be shown again."""
    metadata: dict[str, str] = {}
    for item in meta or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise _fail(f"--meta {item!r} must read key=value")
        metadata[name] = value
    if user is not None:
        metadata["user"] = user
    if team is not None:
        metadata["team"] = team

    async def work(cfg: SpoonConfig, store: KeyStore) -> tuple[VirtualKey, str]:
        record, plain = new_key(alias, _secret(cfg), role=role, models=model or None, budget_limit=budget,
                                budget_period=period, rpm=rpm, tpm=tpm, max_concurrent=max_concurrent,
                                expires_at=parse_expiry(expires) if expires else None, metadata=metadata)
        await store.create(record)
        return record, plain

    record, plain = _run(config, work)
    if as_json:
        _print_json({"key": plain, **record.public_dict()})
        return
    typer.echo(f"created virtual key {record.alias!r} ({record.role})")
    typer.echo(plain)
    typer.echo("Store it now: it is shown only this once.", err=True)


@keys_app.command("list")
def list_keys(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    active: Annotated[bool, typer.Option("--active", help="Only keys neither revoked nor expired.")] = False,
) -> None:
    """List keys (display prefix, never the key), oldest first."""

    async def work(cfg: SpoonConfig, store: KeyStore) -> list[VirtualKey]:
        return await store.list_keys()

    records = [r for r in _run(config, work) if not active or r.status() == "active"]
    if as_json:
        _print_json([r.public_dict() for r in records])
        return
    if not records:
        typer.echo("no virtual keys")
        return
    rows = [("ALIAS", "KEY", "ROLE", "STATUS", "MODELS", "BUDGET", "RPM", "TPM", "CONC", "EXPIRES")]
    for r in records:
        rows.append((r.alias, r.display, r.role, r.status(), ",".join(r.models) if r.models is not None else "any",
                     f"{r.budget_limit:.6g}/{r.budget_period}" if r.budget_limit is not None else "-",
                     str(r.rpm or "-"), str(r.tpm or "-"), str(r.max_concurrent or "-"), _when(r.expires_at)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@keys_app.command("show")
def show(
    alias: Annotated[str, typer.Argument(help="The key's alias.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one key's limits, models, metadata, status and spend this period (never the key)."""

    async def work(cfg: SpoonConfig, store: KeyStore) -> tuple[VirtualKey, dict[str, Any] | None]:
        from .guard import key_spend

        record = await store.require(alias)
        return record, await key_spend(cfg, record)

    record, spend = _run(config, work)
    if as_json:
        _print_json({**record.public_dict(), "spend": spend})
        return
    _print_record(record)
    if spend is not None:
        typer.echo(f"{'spent:':<16}${spend['spent']:.6g} of ${spend['limit']:.6g} ({spend['period_id']}), "
                   f"${spend['reserved']:.6g} reserved, ${spend['remaining']:.6g} left")


@keys_app.command("revoke")
def revoke(
    alias: Annotated[str, typer.Argument(help="The key's alias.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: every gateway replica refuses it within a second."""

    async def work(cfg: SpoonConfig, store: KeyStore) -> VirtualKey:
        return await store.revoke(alias)

    record = _run(config, work)
    if as_json:
        _print_json(record.public_dict())
    else:
        typer.echo(f"revoked virtual key {record.alias!r} at {_when(record.revoked_at)}")


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    keys_app(prog_name=f"{sys.executable} -m spoon_llm.server.key_commands")
