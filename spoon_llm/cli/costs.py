"""``spoon-llm costs``: spending from the persisted usage ledger, grouped by provider, model, key, tag or day."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from ._common import EXIT_USAGE, ConfigOption, fail, load_config, money, stdout_console

if TYPE_CHECKING:
    from ..config import ConfigurationManager
    from ..state.base import StateStore

Dimension = Literal["provider", "model", "key", "tag", "day", "deployment"]
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
COLUMNS = ("group", "requests", "input_tokens", "output_tokens", "cost", "unpriced_requests", "failed_requests")


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """``7d``, ``24h``, ``30m`` (ago) or an ISO date/time (UTC unless it names a zone) as epoch seconds."""
    if value is None:
        return None
    now = time.time() if now is None else now
    match = _RELATIVE.match(value.strip().lower())
    if match:
        since = now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            fail(f"--since {value!r} is neither a duration nor a date", "use e.g. --since 7d, 24h or 2026-01-31",
                 EXIT_USAGE)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        since = moment.timestamp()
    try:  # a moment a date can show (the report's title prints it)
        datetime.fromtimestamp(since, timezone.utc)
    except (OverflowError, ValueError, OSError):
        fail(f"--since {value!r} is outside the dates this can hold (years 1 to 9999)",
             "use e.g. --since 30d or 2026-01-31", EXIT_USAGE)
    return since


def ledger_store(config: ConfigurationManager) -> StateStore | Path:
    """The store the usage ledger persists to, as the command line writes it (see ``cli_config``).

    A SQLite file that does not exist yet is returned as its path: reading must not create it.
    """
    from ..state import default_state_path, open_store
    from ..state.sqlite import STATE_PATH_ENV

    state = config.config.state
    kind = state.ledger
    if kind == "auto":
        kind = "redis" if state.backend == "redis" else "sqlite"
    if kind == "memory":
        fail("the usage ledger is configured in memory, so nothing was persisted",
             'set [state] ledger = "sqlite" (or remove it: the command line then uses SQLite)')
    if kind == "sqlite":
        path = Path(os.environ.get(STATE_PATH_ENV) or state.path or default_state_path()).expanduser()
        if not path.exists():
            return path
    return open_store(kind, config=state)


def labels(record: dict[str, Any], by: Dimension) -> list[str]:
    """The groups one record counts towards (several for ``tag``: one per tag it carries)."""
    if by == "tag":
        return [f"{k}={v}" for k, v in sorted((record.get("tags") or {}).items())] or ["(untagged)"]
    if by == "day":
        return [datetime.fromtimestamp(float(record.get("ts", 0)), timezone.utc).strftime("%Y-%m-%d")]
    if by == "key":
        alias = record.get("key_alias")
        return [f"{record.get('provider', '')}#{alias}" if alias else str(record.get("provider", ""))]
    return [str(record.get(by) or "")]


def group(records: list[dict[str, Any]], by: Dimension) -> list[dict[str, Any]]:
    """Totals per group; days oldest first, anything else dearest first."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        for label in labels(record, by):
            row = out.get(label)
            if row is None:
                row = out[label] = {"group": label, "requests": 0, "input_tokens": 0, "output_tokens": 0,
                                    "cost": 0.0, "unpriced_requests": 0, "failed_requests": 0}
            row["requests"] += 1
            row["input_tokens"] += int(record.get("input_tokens") or 0)
            row["output_tokens"] += int(record.get("output_tokens") or 0)
            row["cost"] += float(record.get("cost") or 0.0)
            row["unpriced_requests"] += 1 if record.get("unpriced") else 0
            row["failed_requests"] += 0 if record.get("success", True) else 1
    rows = list(out.values())
    if by == "day":
        return sorted(rows, key=lambda r: r["group"])
    return sorted(rows, key=lambda r: (-r["cost"], r["group"]))


async def read_ledger(store: StateStore, since: float | None, table: str | None = None) -> list[dict[str, Any]]:
    """Every record of ledger ``table`` (default: the un-namespaced one) since ``since``; then closes the store."""
    from ..costs.tracker import LEDGER_TABLE

    try:
        return await store.records(table or LEDGER_TABLE, since=since)
    finally:
        await store.close()


def register(app: typer.Typer) -> None:
    """Add ``costs`` to ``app``."""

    @app.command("costs")
    def costs(
        by: Annotated[Dimension, typer.Option("--by", help="Group by provider, model, key, tag, day or "
                                                           "deployment.")] = "provider",
        since: Annotated[str | None, typer.Option("--since", help="7d, 24h, 30m or a date such as "
                                                                  "2026-01-31.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Show what was spent, from the persisted usage ledger."""
        from ..errors import LLMError

        if as_json and as_csv:
            fail("--json and --csv exclude each other", "pick one", EXIT_USAGE)
        start = parse_since(since)
        cfg = load_config(config)
        store = ledger_store(cfg)
        if isinstance(store, Path):
            stdout_console().print(Text(f"no usage recorded yet ({store} does not exist)"), soft_wrap=True)
            return
        try:
            from ..costs.namespace import ledger_table, resolve_namespace

            # The ledger of this configuration's namespace, as the library writes it.
            records = asyncio.run(read_ledger(store, start, ledger_table(resolve_namespace(cfg))))
        except (LLMError, OSError) as exc:
            fail(f"cannot read the usage ledger: {exc}", "check [state] path / url and SPOON_LLM_STATE_PATH")
        rows = group(records, by)
        if as_json:
            total = {k: sum(r[k] for r in rows) for k in COLUMNS[1:]} if by != "tag" else None
            sys.stdout.write(json.dumps({"by": by, "since": start, "rows": rows, "total": total}, indent=2) + "\n")
            return
        if as_csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow([by, *COLUMNS[1:]])
            for row in rows:
                writer.writerow([row[c] for c in COLUMNS])
            sys.stdout.write(buffer.getvalue())
            return
        title = f"costs by {by}" + (f" since {datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M} UTC"
                                   if start is not None else "")
        table = Table(title=title, show_footer=by != "tag" and bool(rows))
        table.add_column(by, style="bold", overflow="fold", footer="total")
        for name in ("requests", "input_tokens", "output_tokens"):
            table.add_column(name.replace("_", " "), justify="right", footer=str(sum(r[name] for r in rows)))
        table.add_column("cost", justify="right", footer=money(sum(r["cost"] for r in rows)))
        table.add_column("unpriced", justify="right")
        for row in rows:
            table.add_row(Text(row["group"]), str(row["requests"]), str(row["input_tokens"]),
                          str(row["output_tokens"]), money(row["cost"]), str(row["unpriced_requests"]))
        if not rows:
            stdout_console().print(Text("no usage recorded" + (" in that period" if start is not None else "")))
            return
        stdout_console().print(table)
