"""What admin actions change in a running gateway, and how every replica learns of them.

An action (switch the default backend, set a budget, point a backend at a new endpoint) is written to the shared
:class:`~spoon_llm.server.admin.store.AdminStore` and applied here at once; every replica polls the store's
version every ``[server] admin_refresh`` seconds (0.5 s by default, the key store's rhythm) and applies what
changed. Applying is idempotent: a replica compares the document with what it applied last.

A new endpoint applies to new requests only: calls in flight keep the provider instance they hold, which is
closed once its deployment has no call in flight (or when the gateway stops).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ...costs.budgets import Budget, BudgetAlert, BudgetManager
from ...errors import LLMError, ValidationError
from ...monitoring.structured_logging import log_event
from .store import AdminStore

if TYPE_CHECKING:
    from ...manager import LLMManager
    from ...state.base import StateStore
    from ..app import GatewayApp

__all__ = ["AdminRuntime", "check_endpoint", "level_of", "safe_url"]

logger = logging.getLogger("spoon_llm.server.admin")

#: Spend levels reported by the budget routes: 75% warning, 90% critical, 100% calls blocked.
LEVELS = ((0.75, "warning"), (0.9, "critical"), (1.0, "blocked"))
_RETIRED_MAX_WAIT = 3600.0


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")  # '_' too: container service names use it


def safe_url(url: str | None) -> str | None:
    """``url`` without credentials, query or fragment: the form that may be shown, audited or logged."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<not a valid URL>"
    if not parts.netloc:  # no //host: credentials could be anywhere in it
        return "<not an http(s)://host URL>"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        name = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.removesuffix(".").split("."))


def check_endpoint(endpoint: Any) -> str:
    """A validated endpoint URL: ``http``/``https``, a valid host, no credentials, query or fragment.

    Spaces and control characters are refused anywhere in it. Messages never repeat the text as given (it may
    hold a password), at most its :func:`safe_url` form.
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValidationError("endpoint must be a URL such as 'http://host:8000'")
    text = endpoint.strip()
    # urlsplit drops tabs and newlines before parsing, but the text as given is what would be stored and used.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValidationError("endpoint must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValidationError("endpoint is not a valid URL (is an IPv6 host's [ ] closed?)") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("endpoint must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("endpoint must not carry credentials; set the provider's api_key instead")
    shown = safe_url(text)
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"endpoint {shown!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValidationError(f"endpoint {shown!r} names no host")
    if not _valid_host(parts.hostname):
        raise ValidationError(f"endpoint {shown!r}: {parts.hostname!r} is neither a host name nor an IP address")
    if parts.query or parts.fragment:
        raise ValidationError(f"endpoint {shown!r} must not have a query or fragment")
    if port == 0:
        raise ValidationError(f"endpoint {shown!r} has port 0")
    return text.rstrip("/")


def level_of(percent: float | None) -> str:
    """``ok``, ``warning`` (>= 75%), ``critical`` (>= 90%) or ``blocked`` (>= 100%)."""
    found = "ok"
    for threshold, name in LEVELS:
        if percent is not None and percent >= threshold * 100:
            found = name
    return found


class AdminRuntime:
    """Applies admin changes to this replica and keeps it in step with the others through the admin store."""

    def __init__(self, app: GatewayApp, store: AdminStore, *, refresh: float = 0.5) -> None:
        self.app = app
        self.store = store
        self.refresh = refresh
        self.started = time.time()
        self.alerts: list[dict[str, Any]] = []
        self._version: int | None = None
        self._applied: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._retired: list[tuple[Any, AsyncGenerator[None, None], float]] = []
        self._budgets: BudgetManager | None = None
        self._budget_store: StateStore | None = None
        self._lock = asyncio.Lock()
        self._failing = False

    @property
    def manager(self) -> LLMManager:
        """The gateway's manager."""
        manager = self.app.manager
        assert manager is not None, "the admin runtime starts after the gateway's manager"
        return manager

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Apply what the store holds and start polling it."""
        self.budget_manager()  # alerts of configured budgets are collected from the start
        await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="spoon-llm-admin-sync")

    async def stop(self) -> None:
        """Stop polling; close retired provider instances and what this runtime opened (each once)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        retired, self._retired = self._retired, []
        for _, closer, _ in retired:
            await self._close(closer)
        store, self._budget_store = self._budget_store, None
        if store is not None:
            await store.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.sync()
                if self._failing:
                    self._failing = False
                    logger.warning("the shared admin settings are readable again")
            except LLMError as exc:  # the store is down: keep what was applied, try again next round
                if not self._failing:  # once per outage, not every round
                    self._failing = True
                    logger.warning("admin settings could not be read from the shared store (changes made through "
                                   "other replicas wait until it is back): %s", exc)
            except Exception:  # a bad document must not stop the loop
                logger.exception("applying shared admin settings failed")
            await self._close_idle()

    async def sync(self) -> None:
        """Read the store's version; when it moved, read the document and apply it."""
        version = await self.store.version()
        if version == self._version:
            return
        version, document = await self.store.settings()
        async with self._lock:
            self._version = version
            self.apply(document)

    # -- applying the shared document ---------------------------------------------------------------------------

    def apply(self, document: dict[str, Any]) -> None:
        """Bring this replica in line with ``document`` (only what differs from what it applied last)."""
        applied = self._applied
        backend = document.get("backend")
        if backend and backend != applied.get("backend"):
            self._apply_backend(backend)
        for provider, endpoint in (document.get("endpoints") or {}).items():
            if endpoint != (applied.get("endpoints") or {}).get(provider):
                self._apply_endpoint(provider, endpoint)
        budgets = document.get("budgets") or {}
        if budgets != (applied.get("budgets") or {}):
            self._apply_budgets(budgets)
        self._applied = {"backend": backend, "endpoints": dict(document.get("endpoints") or {}),
                         "budgets": dict(budgets)}

    def _apply_backend(self, backend: dict[str, Any]) -> None:
        manager = self.manager
        name = backend["name"]
        try:
            manager.router.resolve(name, None)
        except LLMError as exc:
            logger.error("the shared default backend %r is not configured here: %s", name, exc)
            return
        manager.router.default_override = name
        if backend.get("forced"):
            self.reset_backend(name)

    def reset_backend(self, name: str) -> None:
        """Put every deployment of ``name`` (a provider or an alias) back into rotation."""
        for state, _ in self.manager.router.resolve(name, None).targets:
            state.reset()

    def _apply_endpoint(self, provider: str, endpoint: str) -> None:
        manager = self.manager
        sections = manager.config_manager.config.providers
        section = sections.get(provider)
        if section is None:
            logger.error("the shared endpoint of provider %r names no section configured here", provider)
            return
        sections[provider] = section.model_copy(update={"base_url": endpoint})
        now = time.monotonic()
        for state in manager.router.provider_deployments(provider):
            for closer in state.repoint(state.config.model_copy(update={"base_url": endpoint})):
                self._retired.append((state, closer, now))

    def _apply_budgets(self, budgets: dict[str, dict[str, Any]]) -> None:
        manager = self.budget_manager(create=bool(budgets))
        if manager is None:
            return
        for name, spec in budgets.items():
            current = manager.budgets.get(name)
            limit, period = float(spec["limit"]), spec.get("period", "total")
            if current is None:
                thresholds = tuple(sorted({*self.thresholds(), 1.0}))
                manager.add(Budget(name, limit, period, spec.get("scope", "global"), spec.get("match"),
                                   spec.get("value"), thresholds))
            elif (current.limit, current.period) != (limit, period):
                manager.set_limit(name, limit, period=period)

    async def publish(self, change: Any) -> dict[str, Any]:
        """Write ``change(document)`` to the shared store and apply the result here at once; returns it."""
        version, document = await self.store.change(change)
        async with self._lock:
            self._version = version
            self.apply(document)
        return document

    def backend_since(self) -> float:
        """When the current default backend became the default (this process's start when never switched)."""
        backend = self._applied.get("backend")
        return float(backend["since"]) if backend else self.started

    def thresholds(self) -> tuple[float, ...]:
        """The configured alert thresholds (``[budget] alert_thresholds``)."""
        return tuple(self.manager.config_manager.config.budget.alert_thresholds)

    # -- the budget manager -------------------------------------------------------------------------------------

    def budget_manager(self, *, create: bool = False) -> BudgetManager | None:
        """The manager's budget guard's :class:`BudgetManager`; made (and added to the chain) when ``create``.

        Every budget alerts at 100% too (level ``blocked``), besides ``[budget] alert_thresholds``.
        """
        if self._budgets is not None:
            return self._budgets
        from ...middleware.budget import BudgetMiddleware

        for middleware in self.manager.middleware:
            if isinstance(middleware, BudgetMiddleware):
                budgets = self._budgets = middleware.budgets
                budgets.on_alert(self._on_alert)
                for budget in budgets.budgets.values():  # the gateway also alerts when calls start being refused
                    if 1.0 not in budget.thresholds:
                        budget.thresholds = tuple(sorted({*budget.thresholds, 1.0}))
                        budgets.add(budget)
                return budgets
        if not create:
            return None
        # No budget was configured: the guard joins the chain now. Appending is safe with calls in flight (each
        # runs the after-hooks only of the middleware that admitted it).
        from ...pricing.book import PriceBook
        from ...state import open_store

        config = self.manager.config_manager.config
        state = config.state
        kind = "redis" if state.backend == "redis" else ("memory" if state.ledger == "memory" else "sqlite")
        if state.ledger not in ("auto", "memory"):
            kind = state.ledger
        self._budget_store = open_store(kind, config=state)
        budgets = BudgetManager(self._budget_store, events=self.manager.events)
        budgets.on_alert(self._on_alert)
        self.manager.add_middleware(BudgetMiddleware(budgets, PriceBook.from_config(config),
                                                     default_max_tokens=config.budget.default_max_tokens,
                                                     fail_mode=state.fail_mode))
        self._budgets = budgets
        return budgets

    def _on_alert(self, alert: BudgetAlert) -> None:
        level = "blocked" if alert.threshold >= 1.0 else alert.level
        record = {**alert.to_dict(), "level": level, "time": time.time()}
        self.alerts = [*self.alerts[-49:], record]
        severity = logging.ERROR if level == "blocked" else logging.WARNING
        if logger.isEnabledFor(severity):
            log_event(logger, severity, "budget_alert", record)

    # -- retired provider instances -----------------------------------------------------------------------------

    async def _close_idle(self) -> None:
        if not self._retired:
            return
        now = time.monotonic()
        keep = []
        for state, closer, since in self._retired:
            if state.inflight == 0 or now - since > _RETIRED_MAX_WAIT:
                await self._close(closer)
            else:
                keep.append((state, closer, since))
        self._retired = keep

    @staticmethod
    async def _close(closer: AsyncGenerator[None, None]) -> None:
        try:
            await closer.aclose()
        except Exception:  # closing a client must not stop the rest
            logger.exception("closing a retired provider client failed")

