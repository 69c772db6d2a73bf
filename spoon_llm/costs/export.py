"""Exporting usage records as JSON or CSV (for spreadsheets, billing and the admin API)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tracker import UsageRecord

__all__ = ["CSV_COLUMNS", "to_csv", "to_json"]

CSV_COLUMNS = (
    "ts", "provider", "provider_type", "model", "deployment", "key_alias", "operation", "request_id",
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
    "cost", "currency", "unpriced", "source", "success",
)


def _write(text: str, path: str | None) -> str:
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def to_json(records: Sequence[UsageRecord], path: str | None = None) -> str:
    """The records as a JSON array of objects."""
    return _write(json.dumps([r.to_dict() for r in records], indent=2), path)


def to_csv(records: Sequence[UsageRecord], path: str | None = None) -> str:
    """The records as CSV with a header row; each tag name seen becomes a ``tag.<name>`` column."""
    tag_names = sorted({name for r in records for name in r.tags})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"tag.{n}" for n in tag_names)])
    for r in records:
        data = r.to_dict()
        writer.writerow([*("" if data[c] is None else data[c] for c in CSV_COLUMNS),
                         *(r.tags.get(n, "") for n in tag_names)])
    return _write(out.getvalue(), path)
