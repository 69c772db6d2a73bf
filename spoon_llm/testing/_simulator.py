"""The public :class:`ProviderSimulator` (lifecycle and test API) and :func:`serve_forever`."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import Any

from ._app import RateLimits, SimulatorApp
from ._faults import Fault
from ._records import RecordedRequest
from ._replay import ConformanceCase, as_case
from ._routes import ENDPOINTS
from ._script import Reply, check_vendor
from ._server import ServerHandle, start_server
from ._urls import VendorURLs


class ProviderSimulator(VendorURLs):
    """A local HTTP server that speaks the OpenAI, Anthropic and Gemini wire formats.

    It listens on 127.0.0.1 (an ephemeral port by default) and answers every route of the five
    supported vendors (OpenAI/vLLM, Anthropic, Gemini, OpenRouter, DeepSeek) with deterministic
    default answers (see :mod:`spoon_llm.testing._answers`), scripted replies (:meth:`script`),
    injected faults (:meth:`fault`) or recorded responses (:meth:`replay`), and records every
    request it receives (:attr:`requests`).

    Use it as ``with ProviderSimulator() as sim:`` (the server runs its own event loop in a
    background thread) or ``async with ProviderSimulator() as sim:`` (it serves inside the
    caller's loop); or call :meth:`start` / :meth:`stop`, :meth:`astart` / :meth:`astop`.

    Default answers: ``"Simulated reply to: <last user message text, first 200 characters>"``;
    JSON mode gets a JSON value fitting the requested schema (``{"reply": <text>}`` without
    one); a forced tool choice gets a call with schema-shaped arguments; ``max_tokens`` below the
    estimate cuts the text to ``4 * max_tokens`` characters with finish reason ``length``. Token
    counts are estimated at 4 characters per token. Every answer carries a request id header
    (``x-request-id``; Anthropic: ``request-id``).

    ``max_records`` bounds the request log (oldest dropped first; ``None`` = unbounded);
    ``rate_limit_headers=True`` adds the vendors' rate-limit headers to every answer.
    ``strict=True`` refuses what the real APIs refuse (missing credentials, empty conversations, parameters out
    of range, unknown fields; see :mod:`spoon_llm.testing._strict`); a collection of model ids also refuses every
    other model. ``on_answer(request, status)`` is called for every request once its answer is ready.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_records: int | None = 10_000,
        rate_limit_headers: bool = False,
        reuse_port: bool = False,
        strict: bool | Collection[str] = False,
        on_answer: Callable[[RecordedRequest, int], object] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._reuse_port = reuse_port
        self._app = SimulatorApp(max_records=max_records)
        if strict is not False:
            from ._strict import StrictChecks

            models = None if strict is True else [strict] if isinstance(strict, str) else list(strict)
            self._app.strict = StrictChecks(models)
        if on_answer is not None:
            self._app.on_answer = lambda request, response: on_answer(request, response.status)
        self.rate_limit_headers = rate_limit_headers
        self._handle: ServerHandle | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ProviderSimulator:
        """Start serving from a background thread with its own event loop; returns ``self``."""
        if self._port is not None:
            raise RuntimeError("the simulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve_in_thread(ready))
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
            finally:
                ready.set()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="spoon-llm-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    async def _serve_in_thread(self, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        handle = await start_server(self._app, self.host, self._requested_port, reuse_port=self._reuse_port)
        self._handle = handle
        self._port = handle.port
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await handle.close()

    def stop(self) -> None:
        """Stop a simulator started with :meth:`start` (waits for its thread to finish)."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or stop_event is None:
            if self._handle is not None:
                raise RuntimeError("this simulator was started with astart(); stop it with astop()")
            return
        loop.call_soon_threadsafe(stop_event.set)
        thread.join()
        self._thread = self._loop = self._stop_event = None
        self._handle = None
        self._port = None

    async def astart(self) -> ProviderSimulator:
        """Start serving inside the running event loop; returns ``self``."""
        if self._port is not None:
            raise RuntimeError("the simulator is already running")
        self._handle = await start_server(self._app, self.host, self._requested_port, reuse_port=self._reuse_port)
        self._port = self._handle.port
        return self

    async def astop(self) -> None:
        """Stop a simulator started with :meth:`astart`, closing every connection."""
        if self._thread is not None:
            raise RuntimeError("this simulator was started with start(); stop it with stop()")
        handle, self._handle = self._handle, None
        self._port = None
        if handle is not None:
            await handle.close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ProviderSimulator:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()

    # -- addresses ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port the simulator listens on (raises ``RuntimeError`` when not running)."""
        if self._port is None:
            raise RuntimeError("the simulator is not running; use it as a context manager or call start()")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    # -- behaviour ------------------------------------------------------------------------------
    def script(
        self,
        vendor: str | None,
        reply: Reply | str,
        *,
        model: str | None = None,
        times: int | None = None,
    ) -> None:
        """Queue a reply for chat/completion requests to ``vendor`` (``None`` = any vendor).

        ``reply`` is a :class:`Reply` or plain text. Entries are used in the order they were
        queued; ``times=N`` uses an entry for N requests, ``times=None`` for every later matching
        request (so queue one-shot entries with ``times=1`` before a catch-all). ``model``
        restricts the entry to requests naming that model (Gemini: without ``models/``).
        """
        self._app.scripts.add(vendor, reply, model, times)

    def fault(
        self,
        vendor: str | None,
        fault: Fault,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        times: int | None = 1,
        probability: float = 1.0,
        seed: int | None = None,
    ) -> None:
        """Make matching requests fail as ``fault`` describes.

        Scope: ``vendor`` (``None`` = any), ``model``, ``endpoint`` (``chat``, ``completion``,
        ``embeddings``, ``count_tokens``, ``models``, ``model``, ``health``). Frequency: ``times``
        (default once; ``None`` = forever) and ``probability`` per matching request, drawn from a
        generator seeded with ``seed`` so load tests are reproducible.
        """
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
        self._app.faults.add(
            check_vendor(vendor),
            fault,
            model=model,
            endpoint=endpoint,
            times=times,
            probability=probability,
            seed=seed,
        )

    def replay(self, record: ConformanceCase | Mapping[str, Any] | str | os.PathLike[str]) -> ConformanceCase:
        """Answer the next request of the record's vendor and endpoint kind exactly as recorded.

        ``record`` is a :class:`ConformanceCase`, a parsed corpus file or a path to one. The
        status, content type, ``retry-after`` (when recorded) and body bytes (or SSE events) are
        sent as recorded; returns the case so the test can compare with ``case.expected``.
        """
        case = as_case(record)
        self._app.replays.add(case)
        return case

    @property
    def rate_limit_headers(self) -> bool:
        """Whether answers carry rate-limit headers (settable)."""
        return self._app.rate_limits is not None

    @rate_limit_headers.setter
    def rate_limit_headers(self, enabled: bool) -> None:
        self._app.rate_limits = RateLimits() if enabled else None

    def reset(self) -> None:
        """Forget scripts, faults, queued replays and recorded requests."""
        self._app.scripts.clear()
        self._app.faults.clear()
        self._app.replays.clear()
        self._app.records.clear()

    # -- records --------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every recorded request, oldest first (a copy)."""
        return self._app.records.snapshot()

    @property
    def open_connections(self) -> int:
        """Client connections open right now (a proxy under test must close its upstream when its client leaves)."""
        handle = self._handle
        return len(handle.connections) if handle is not None else 0

    @property
    def request_count(self) -> int:
        """How many requests were received since start or the last :meth:`reset`."""
        return self._app.records.total

    def requests_for(self, vendor: str | None = None, endpoint: str | None = None) -> list[RecordedRequest]:
        """Recorded requests filtered by vendor and/or endpoint kind."""
        name = check_vendor(vendor)
        return [
            r
            for r in self._app.records.snapshot()
            if (name is None or r.vendor == name) and (endpoint is None or r.endpoint == endpoint)
        ]

    def last_request(self, vendor: str | None = None) -> RecordedRequest:
        """The newest recorded request (optionally of one vendor); ``LookupError`` if none."""
        record = self._app.records.last(check_vendor(vendor))
        if record is None:
            raise LookupError(f"no request recorded{' for ' + vendor if vendor else ''}")
        return record


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready_callback: Callable[[int], object] | None = None,
    simulator: ProviderSimulator | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve the simulator in the current thread until interrupted (Ctrl-C or SIGTERM).

    Prints nothing; ``ready_callback(port)`` is called once, when the socket listens (useful
    with ``port=0``). Pass ``simulator`` to serve a pre-configured instance (scripts, faults).
    ``reuse_port`` lets several processes share one port (SO_REUSEPORT) for load tests.
    """
    sim = simulator if simulator is not None else ProviderSimulator(host, port, reuse_port=reuse_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
        await sim.astart()
        try:
            if ready_callback is not None:
                ready_callback(sim.port)
            await stop.wait()
        finally:
            await sim.astop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
