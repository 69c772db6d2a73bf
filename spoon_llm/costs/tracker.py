"""``CostTracker``: what was spent, by provider, model, deployment (key) and caller tags, and when.

Every finished attempt becomes one :class:`UsageRecord`. Totals per dimension are kept as running sums (O(1)
per record); history and filtered totals scan the recent records kept in memory. With a ``ledger`` store
(SQLite or Redis) each record is also appended there (by the SQLite store in batches, shortly after: see
:mod:`spoon_llm.state.sqlite`), and :meth:`CostTracker.load` rebuilds the totals after a restart.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from ..state.base import StateStore

__all__ = ["LEDGER_TABLE", "CostTracker", "UsageRecord", "UsageRow", "UsageTotals"]

LEDGER_TABLE = "usage"
Bucket = Literal["minute", "hour", "day", "month"]
_BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class UsageRow(NamedTuple):
    """The layout of one cost row: :class:`UsageRecord`'s fields in order, tags as a tuple of ``(name, value)``.

    The request path builds it as a plain tuple literal (``CostMiddleware.after_attempt``; no class call per
    request), as does :meth:`UsageRecord.to_row`; :meth:`CostTracker.add`, :meth:`UsageRecord.from_row` and
    :meth:`UsageRecord.row_dict` read it by position. A test checks that all of them agree with these fields.
    """

    ts: float
    provider: str
    model: str
    deployment: str
    key_alias: str | None
    provider_type: str
    operation: str
    request_id: str
    tags: tuple[tuple[str, str], ...]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost: float
    currency: str
    unpriced: bool
    source: str | None
    success: bool


# Positions of the fields read by index (filters), from the layout rather than written as numbers.
_TS, _PROVIDER, _MODEL, _DEPLOYMENT, _TAGS = (UsageRow._fields.index(name) for name in (
    "ts", "provider", "model", "deployment", "tags"))


@dataclass(slots=True)
class UsageRecord:
    """One attempt's usage and cost. ``ts`` is wall-clock seconds (UTC epoch)."""

    ts: float
    provider: str
    model: str
    deployment: str = ""
    key_alias: str | None = None
    provider_type: str = ""
    operation: str = "chat"
    request_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    currency: str = "USD"
    unpriced: bool = False
    source: str | None = None
    success: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> UsageRecord:
        """Rebuild from a :class:`UsageRow` (the compact tuple the tracker keeps)."""
        record = cls(*row)
        record.tags = dict(row[_TAGS])
        return record

    @staticmethod
    def row_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        """:meth:`to_dict` of the record a row describes, without building the record."""
        data = dict(zip(UsageRow._fields, row, strict=True))
        data["tags"] = dict(row[_TAGS])
        return data

    def to_row(self) -> tuple[Any, ...]:
        """The compact tuple form: a :class:`UsageRow` built as a literal."""
        return (self.ts, self.provider, self.model, self.deployment, self.key_alias, self.provider_type,
                self.operation, self.request_id, tuple(self.tags.items()), self.input_tokens, self.output_tokens,
                self.cached_input_tokens, self.cache_write_tokens, self.reasoning_tokens, self.cost, self.currency,
                self.unpriced, self.source, self.success)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRecord:
        """Rebuild from :meth:`to_dict` output (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})



@dataclass(slots=True)
class UsageTotals:
    """Running sums over a set of records."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    unpriced_requests: int = 0

    def add(self, input_tokens: int, output_tokens: int, cached: int, reasoning: int, cost: float,
            unpriced: bool) -> None:
        """Fold one request in."""
        self.requests += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.total_tokens += input_tokens + output_tokens
        self.cached_input_tokens += cached
        self.reasoning_tokens += reasoning
        self.cost += cost
        if unpriced:
            self.unpriced_requests += 1

    def merge(self, other: UsageTotals) -> None:
        """Add another set of totals to this one."""
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cost += other.cost
        self.unpriced_requests += other.unpriced_requests

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (what ``get_usage_stats`` returns per key)."""
        return asdict(self)


class CostTracker:
    """Aggregates usage records; queries are synchronous and cheap.

    Per record the hot path updates one group: (provider, deployment, key, model, tags); totals by provider, model,
    deployment, key or tag are summed from those groups when asked. Records are kept as compact
    tuples (at most ``max_records``) for history, filtered totals and exports. ``ledger`` persists records
    (SQLite for restarts, Redis to share); ``clock`` gives wall-clock time.
    """

    def __init__(self, ledger: StateStore | None = None, *, max_records: int = 100_000,
                 clock: Callable[[], float] = time.time, table: str = LEDGER_TABLE) -> None:
        self.ledger = ledger
        #: The ledger table (one per namespace: see :func:`spoon_llm.costs.namespace.ledger_table`).
        self.table = table
        self.clock = clock
        self._records: deque[tuple[Any, ...]] = deque(maxlen=max_records)
        self._reset_totals()

    def _reset_totals(self) -> None:
        # (provider, deployment, key alias, model, tags as the rows carry them) -> running sums.
        self._groups: dict[tuple[str, str, str | None, str, tuple[tuple[str, str], ...]], UsageTotals] = {}

    # -- recording --------------------------------------------------------------------------------------------

    def add(self, row: tuple[Any, ...]) -> None:
        """Fold one record given as a :class:`UsageRow` tuple (the middleware's allocation-light path)."""
        # UsageRow's fields by position (a NamedTuple's attribute access costs more than unpacking).
        _, provider, model, deployment, alias, _, _, _, tags, tin, tout, cached, _, reasoning, cost, _, \
            unpriced, _, _ = row
        key = (provider, deployment, alias, model, tags)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = UsageTotals()
        # UsageTotals.add, inlined: this runs for every request.
        group.requests += 1
        group.input_tokens += tin
        group.output_tokens += tout
        group.total_tokens += tin + tout
        if cached:
            group.cached_input_tokens += cached
        if reasoning:
            group.reasoning_tokens += reasoning
        group.cost += cost
        if unpriced:
            group.unpriced_requests += 1
        self._records.append(row)

    def record_nowait(self, row: tuple[Any, ...]) -> Awaitable[None] | None:
        """Fold one row in and hand it to the ledger; ``None`` when nothing is left to wait for.

        The request path of cost accounting: the memory and SQLite stores take the record at once (SQLite writes
        it shortly after, in a batch), a Redis ledger returns the awaitable append.
        """
        self.add(row)
        ledger = self.ledger
        if ledger is None:
            return None
        return ledger.append_nowait(self.table, UsageRecord.row_dict(row))

    async def record(self, record: UsageRecord | tuple[Any, ...]) -> None:
        """Add a record to the totals (and to the ledger store, when there is one)."""
        row = record.to_row() if isinstance(record, UsageRecord) else record
        self.add(row)
        if self.ledger is not None:
            data = record.to_dict() if isinstance(record, UsageRecord) else UsageRecord.row_dict(row)
            await self.ledger.append(self.table, data)

    async def load(self, *, since: float | None = None) -> int:
        """Rebuild the totals from the ledger store (after a restart); returns how many records were read."""
        if self.ledger is None:
            return 0
        rows = await self.ledger.records(self.table, since=since)
        self._records.clear()
        self._reset_totals()
        for row in rows:
            self.add(UsageRecord.from_dict(row).to_row())
        return len(rows)

    def reset(self) -> None:
        """Forget the in-memory totals and records (the ledger store is left alone)."""
        self._records.clear()
        self._reset_totals()

    # -- queries ----------------------------------------------------------------------------------------------

    @property
    def totals(self) -> UsageTotals:
        """Everything recorded, summed (from the per-deployment groups: nothing extra on the hot path)."""
        out = UsageTotals()
        for group in self._groups.values():
            out.merge(group)
        return out

    @property
    def records(self) -> list[UsageRecord]:
        """The records kept in memory, oldest first."""
        return [UsageRecord.from_row(r) for r in self._records]

    def _select(self, provider: str | None, model: str | None, deployment: str | None,
                tags: Mapping[str, str] | None, since: float | None, until: float | None) -> Iterable[UsageRecord]:
        for row in self._records:
            if ((provider is None or row[_PROVIDER] == provider) and (model is None or row[_MODEL] == model)
                    and (deployment is None or row[_DEPLOYMENT] == deployment)
                    and (since is None or row[_TS] >= since) and (until is None or row[_TS] < until)
                    and (not tags or all((k, v) in row[_TAGS] for k, v in tags.items()))):
                yield UsageRecord.from_row(row)

    def _by(self, dimension: str) -> dict[str, UsageTotals]:
        out: dict[str, UsageTotals] = {}
        if dimension == "tag":
            for (_, _, _, _, tags), totals in self._groups.items():
                for name, value in tags:
                    label = f"{name}:{value}"
                    group = out.get(label)
                    if group is None:
                        group = out[label] = UsageTotals()
                    group.merge(totals)
            return out
        for (provider, deployment, alias, model, _), totals in self._groups.items():
            label = {"provider": provider, "model": model, "deployment": deployment,
                     "key": f"{provider}#{alias}" if alias else ""}[dimension]
            if not label:
                continue
            group = out.get(label)
            if group is None:
                group = out[label] = UsageTotals()
            group.merge(totals)
        return out

    def get_total_cost(self, *, provider: str | None = None, model: str | None = None,
                       deployment: str | None = None, tags: Mapping[str, str] | None = None,
                       since: float | None = None, until: float | None = None) -> float:
        """Money spent, overall or filtered by provider, model, deployment, tags (all must match) and time."""
        if since is None and until is None:
            if not tags:
                if provider is model is deployment is None:
                    return self.totals.cost
                return sum(t.cost for (p, d, _, m, _), t in self._groups.items()
                           if (provider is None or p == provider) and (model is None or m == model)
                           and (deployment is None or d == deployment))
            if len(tags) == 1 and provider is model is deployment is None:
                ((name, value),) = tags.items()
                pair = (name, value)
                return sum(t.cost for key, t in self._groups.items() if pair in key[4])
        return sum(r.cost for r in self._select(provider, model, deployment, tags, since, until))

    def get_usage_stats(self) -> dict[str, dict[str, Any]]:
        """Per model: requests, input/output/total tokens, cost (and cached/reasoning tokens, unpriced count)."""
        return {name: totals.to_dict() for name, totals in self._by("model").items()}

    def get_usage_by(self, dimension: Literal["provider", "model", "deployment", "key", "tag"]
                     ) -> dict[str, dict[str, Any]]:
        """Usage grouped by one dimension.

        ``provider``, ``model``, ``deployment``, ``key`` (``provider#alias``) or ``tag`` (``name:value``).
        """
        return {name: totals.to_dict() for name, totals in self._by(dimension).items()}

    def history(self, bucket: Bucket = "hour", *, since: float | None = None, until: float | None = None,
                by: Literal["provider", "model"] | None = None) -> list[dict[str, Any]]:
        """Usage per time bucket (UTC), oldest first.

        Each row has ``start`` (ISO 8601), ``ts`` and the totals; with ``by``, one row per bucket and provider
        (or model).
        """
        groups: dict[tuple[float, str], UsageTotals] = {}
        for r in self._select(None, None, None, None, since, until):
            start = _bucket_start(r.ts, bucket)
            key = (start, getattr(r, by) if by else "")
            totals = groups.get(key)
            if totals is None:
                totals = groups[key] = UsageTotals()
            totals.add(r.input_tokens, r.output_tokens, r.cached_input_tokens, r.reasoning_tokens, r.cost,
                       r.unpriced)
        rows = []
        for (start, label), totals in sorted(groups.items()):
            row: dict[str, Any] = {"start": datetime.fromtimestamp(start, timezone.utc).isoformat(), "ts": start}
            if by:
                row[by] = label
            row.update(totals.to_dict())
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """Totals and per-provider costs, for ``get_status()``."""
        totals = self.totals
        return {
            "total_cost": totals.cost,
            "requests": totals.requests,
            "input_tokens": totals.input_tokens,
            "output_tokens": totals.output_tokens,
            "unpriced_requests": totals.unpriced_requests,
            "by_provider": {name: t.cost for name, t in self._by("provider").items()},
            "ledger": self.ledger.status() if self.ledger is not None else None,
        }

    # -- export -----------------------------------------------------------------------------------------------

    def export_json(self, path: str | None = None, **filters: Any) -> str:
        """Records (optionally filtered like :meth:`get_total_cost`) as JSON; written to ``path`` when given."""
        from .export import to_json

        return to_json(self._filtered(filters), path)

    def export_csv(self, path: str | None = None, **filters: Any) -> str:
        """Records as CSV (tags as ``tag.<name>`` columns); written to ``path`` when given."""
        from .export import to_csv

        return to_csv(self._filtered(filters), path)

    def _filtered(self, filters: Mapping[str, Any]) -> list[UsageRecord]:
        return list(self._select(filters.get("provider"), filters.get("model"), filters.get("deployment"),
                                 filters.get("tags"), filters.get("since"), filters.get("until")))


def _bucket_start(ts: float, bucket: Bucket) -> float:
    if bucket == "month":
        moment = datetime.fromtimestamp(ts, timezone.utc)
        return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc).timestamp()
    size = _BUCKET_SECONDS[bucket]
    return ts - ts % size
