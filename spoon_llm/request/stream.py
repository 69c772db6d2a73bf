"""A streamed request: the request core's steps, with the provider's stream opened and its chunks delivered.

What differs from a whole answer is only how the provider call is made (``chat_stream``, bounded per chunk by the
first-token and idle timeouts) and how its result is delivered (chunk by chunk, with fallback until the first chunk
reached the caller, then resume from a prefill or restart). Failure handling and request completion are the core's.

:class:`StreamRequest` is what ``LLMManager.chat_stream`` returns. A caller that drops it without ``aclose()``
abandons the request: its ``__del__`` gives back at once, synchronously, what the request holds (in-flight counts,
a circuit's probe, the middleware's holds: budget reservation, rate-limit permit), counts it cancelled and tells
the observers; the provider's connection is closed by the generator's own finalizer moments later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, LLMError, StreamInterruptedError
from ..events import Event, new_request_id
from ..middleware.base import AttemptContext
from ..routing.capabilities import request_needs
from ..routing.resume import accepts_prefill
from ..routing.timeouts import pop_stream_options, stream_timeout_error, stream_timeouts
from ..types import LLMResponseChunk, Message
from ._chunk_timer import ChunkTimer, Resumed
from .core import as_list, cache_options, check_call

if TYPE_CHECKING:
    from types import AsyncGeneratorType

    from ..interface import StreamCallback
    from ..routing.attempts import RequestRun, Slot
    from ..types import TokenUsage
    from .core import RequestCore

__all__ = ["StreamRequest"]

OPERATION = "chat_stream"
_INF = float("inf")
logger = logging.getLogger("spoon_llm.manager")


class _StreamState:
    """What a streamed request holds, shared by its generator and the :class:`StreamRequest` wrapping it.

    Whichever ends the request first (the generator, or the wrapper's ``__del__`` on abandonment) settles it; the
    other then finds nothing left to release.
    """

    __slots__ = ("chunk_count", "core", "cost", "ctx", "finished", "loop", "open", "request_id", "run", "slot",
                 "started", "tags", "usage")

    def __init__(self, core: RequestCore) -> None:
        self.core = core
        self.open = False  # counted in flight, not yet settled
        self.finished = False  # the current attempt delivered its final chunk and ran its after hooks
        self.slot: Slot | None = None  # the attempt in flight, until it is released
        self.ctx: AttemptContext | None = None
        self.chunk_count = 0
        self.usage: TokenUsage | None = None
        self.cost: Any = None
        # request_id, tags, run, started and loop are set by begin(), before ``open`` is.

    def begin(self, run: RequestRun, tags: dict[str, str] | None) -> None:
        self.run, self.tags, self.request_id = run, tags, new_request_id()
        self.loop = asyncio.get_running_loop()
        self.started = self.core._request_begun(self.request_id, OPERATION, tags, run.route)
        self.open = True

    def release_attempt(self) -> Awaitable[None] | None:
        """Give back what the unfinished current attempt holds (nothing when that is done already)."""
        slot, ctx = self.slot, self.ctx
        if slot is None:
            return None
        self.slot = self.ctx = None
        return self.core._release_attempt(slot, ctx)

    def settle(self, error: LLMError | None) -> None:
        """End the request once: ``error``, or cancelled (``None``; a success when its final chunk was delivered)."""
        if not self.open:
            return
        self.open = False
        run = self.run
        assert run is not None
        if error is None and self.finished:
            self.core._request_ok(self.request_id, OPERATION, run.attempts, self.started, self.tags, None,
                                  self.usage, self.cost, self.chunk_count)
        else:
            self.core._request_failed(self.request_id, OPERATION, run.attempts, self.started, self.tags, error,
                                      self.chunk_count)

    def abandon(self) -> None:
        """The caller dropped the stream: settle now, from ``__del__`` (synchronously; async work is scheduled)."""
        try:
            if asyncio.get_running_loop() is not self.loop:
                return  # another thread: the generator's finalizer settles it on its own loop
        except RuntimeError:
            return
        pending = self.release_attempt()
        if isinstance(pending, asyncio.Future):  # already running on (finish_regardless): only collect its outcome
            pending.add_done_callback(_collect)
        self.settle(None)


def _collect(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class StreamRequest:
    """The chunks of one streamed request (an async iterator with ``aclose``); see the module docstring."""

    __slots__ = ("_chunks", "_state")

    def __init__(self, core: RequestCore, messages: Any, provider: str | None, model: str | None,
                 fallback: bool | Sequence[str] | None, deadline: float | None,
                 callbacks: Sequence[StreamCallback] | None, resume_on_interrupt: bool,
                 kwargs: dict[str, Any]) -> None:
        # The generator refers to the state, never to this wrapper: dropping the wrapper runs __del__ at once.
        self._state = state = _StreamState(core)
        chunks: Any = _stream(core, state, messages, provider, model, fallback, deadline, callbacks,
                              resume_on_interrupt, kwargs)
        self._chunks: AsyncGeneratorType[LLMResponseChunk, None] = chunks

    def __aiter__(self) -> StreamRequest:
        return self

    def __anext__(self) -> Awaitable[LLMResponseChunk]:
        return self._chunks.__anext__()

    @property
    def chunks(self) -> AsyncIterator[LLMResponseChunk]:
        """The generator behind this stream, for a relay that holds this wrapper until it closes it.

        Iterating it directly saves a call per chunk; the wrapper must stay referenced meanwhile (dropping it is
        what abandons the request).
        """
        return self._chunks

    def aclose(self) -> Awaitable[None]:
        """Close the stream: the request is settled (cancelled unless its final chunk was delivered)."""
        return self._chunks.aclose()

    def __del__(self) -> None:
        state, chunks = self._state, self._chunks
        # Only a generator suspended at its ``yield`` is abandoned; one suspended at an await is still running
        # for someone (a task awaiting its next chunk) and settles the request itself.
        if state.open and chunks.ag_await is None and not chunks.ag_running:
            try:
                state.abandon()
            except Exception:  # __del__ must not raise; the generator's finalizer still settles the request
                logger.debug("releasing an abandoned stream failed", exc_info=True)


async def _stream(core: RequestCore, state: _StreamState, messages: Any, provider: str | None, model: str | None,
                  fallback: bool | Sequence[str] | None, deadline: float | None,
                  callbacks: Sequence[StreamCallback] | None, resume_on_interrupt: bool,
                  kwargs: dict[str, Any]) -> AsyncGenerator[LLMResponseChunk, None]:
    conversation = as_list(messages)
    tags = kwargs.pop("tags", None)
    check_call(provider, model, deadline, tags, fallback)
    caching = cache_options(kwargs) if "cache" in kwargs or "cache_namespace" in kwargs else None
    stream_options = pop_stream_options(kwargs)
    run = core._start(provider, model, fallback, deadline, request_needs(OPERATION, conversation, None, kwargs))
    state.begin(run, tags)
    request_id, started, events, chain = state.request_id, state.started, core.events, core._chain
    delivered = ""
    interrupted: LLMError | None = None
    refused_prefill: set[str] | None = None
    try:
        slot = run.first()
        while slot is not None:
            deployment = slot.deployment
            # Resume from a prefill only where the candidate continues one; elsewhere restart the answer.
            prefill = bool(delivered) and accepts_prefill(deployment, slot.model) and (
                refused_prefill is None or deployment.name not in refused_prefill)
            restarted = bool(delivered) and not prefill
            prefix = delivered if prefill else ""
            request = conversation if not prefill else [*conversation, Message(role="assistant", content=delivered)]
            call = core._call_kwargs(slot, kwargs)
            number = len(run.attempts) + 1
            ctx = None if not chain else AttemptContext(request_id, OPERATION, deployment, slot.model, request, call,
                                                        tags, number - 1)
            if ctx is not None and caching is not None:
                ctx.cache, ctx.cache_namespace = caching
            deployment.inflight += 1
            state.slot, state.ctx, state.finished = slot, ctx, False  # held until released or let go
            sent_here = False
            stream: AsyncIterator[LLMResponseChunk] | None = None
            timer: ChunkTimer | None = None
            try:
                if ctx is None or not chain.stream_arounds:
                    pending = core._attempt_begun(ctx, request_id, OPERATION, slot, number)
                    instance = None if pending is not None else deployment.ready_provider()
                    if instance is None:
                        instance = await core._provider_within(pending, slot)
                    if ctx is not None:
                        ctx.sent = True
                    stream = instance.chat_stream(request, callbacks=None, **call)
                else:
                    core._attempt_begun(None, request_id, OPERATION, slot, number)
                    stream = chain.wrap_stream(ctx, _StreamOpener(core, ctx, slot, request, call))
                iterator = stream.__aiter__()
                first_wait, idle_wait = stream_timeouts(deployment.config, stream_options, slot.route)
                timer = ChunkTimer()
                deadline_at = run.deadline_at
                limit = left = 0.0
                while True:
                    try:
                        # Stepped by hand: a chunk that is there already (the rest of one read) costs no timer.
                        step = iterator.__anext__().__await__()
                        try:
                            waiting = step.send(None)
                        except StopIteration as ready:
                            chunk = ready.value
                        else:
                            limit = idle_wait if sent_here else first_wait
                            left = _INF if deadline_at == _INF else max(deadline_at - time.monotonic(), 0.0)
                            timer.start(limit if limit < left else left)
                            chunk = await Resumed(step, waiting)
                            if timer.stop():  # it went off as the chunk arrived: the chunk stands
                                timer.expired()
                    except BaseException as exc:
                        # The timer's own cancellation is a timeout; anything else stands (as with asyncio.timeout).
                        if timer.stop() and timer.expired() and isinstance(exc, asyncio.CancelledError):
                            raise stream_timeout_error(limit, left, sent_here, deployment.provider_name,
                                                       slot.model) from exc
                        if isinstance(exc, StopAsyncIteration):
                            break
                        raise
                    if prefix:
                        chunk.content = prefix + chunk.content
                    elif restarted and not sent_here:  # the caller's text so far is replaced from here
                        chunk.metadata = {**chunk.metadata, "restarted": True}
                    delivered = chunk.content
                    state.chunk_count += 1
                    if chunk.usage is not None:
                        state.usage = chunk.usage
                    if chunk.kind == "final":  # the attempt succeeded: after hooks, then cost and trace on the chunk
                        sent = ctx is None or ctx.sent
                        attempt = run.succeeded(slot, sent)
                        if attempt.model is None:  # the provider's default answered: label its model
                            attempt.model = chunk.model or None
                        await chain.finish_async(ctx, response=chunk, usage=state.usage)
                        # From the instance dict: a missing attribute on a pydantic model raises inside getattr.
                        state.cost = vars(chunk).get("cost") or chunk.metadata.get("cost")
                        state.finished = True  # its after hooks have run
                        chunk.metadata = {**chunk.metadata, "attempts": [a.model_dump() for a in run.attempts],
                                          "fallback_path": list(run.path), "deployment": attempt.deployment}
                        if "attempt_end" in events.kinds:
                            events.emit(Event.attempt_ok(request_id, OPERATION, deployment, attempt,
                                                         len(run.attempts), state.usage, sent))
                    elif not sent_here:
                        # Who answers and what failed first, for relays whose headers precede the body.
                        chunk.metadata = {**chunk.metadata, "deployment": deployment.name}
                        if run.attempts:
                            chunk.metadata["attempts"] = [a.model_dump() for a in run.attempts]
                    if not sent_here and not prefix and "first_token" in events.kinds:
                        events.emit(Event.first_token(request_id, OPERATION, deployment,
                                                      slot.model or deployment.model or chunk.model or None,
                                                      time.perf_counter() - started))
                    sent_here = True
                    for callback in callbacks or ():
                        outcome = callback(chunk)
                        if asyncio.iscoroutine(outcome):
                            await outcome
                    yield chunk
            except LLMError as exc:
                state.slot = state.ctx = None  # released below, by the core's failure path
                core._attempt_failed(request_id, OPERATION, slot, number, exc)
                if not sent_here and not delivered:
                    slot = await core._next_slot(run, slot, ctx, exc, request_id, OPERATION, state.usage)
                    continue
                if prefill and not sent_here and isinstance(exc, InvalidRequestError):
                    # The candidate refused the prefill: ask it again without one (a clean restart).
                    run.record_failure(slot, exc)
                    await chain.finish_async(ctx, error=exc, usage=state.usage)
                    refused_prefill = {*(refused_prefill or ()), deployment.name}
                    continue
                first_cut = interrupted is None
                if first_cut:
                    interrupted = exc  # the original interruption: what the final error names
                if await _resumes(core, run, slot, ctx, exc, resume_on_interrupt, state.usage):
                    slot = await run.next()
                    continue
                assert interrupted is not None
                raise run.final_error(StreamInterruptedError(
                    f"the stream failed after output reached the caller: {interrupted}"
                    + ("" if first_cut else f"; resuming it failed too: {exc}"),
                    partial_content=delivered, partial_usage=state.usage, provider=deployment.provider_name,
                    model=slot.model or deployment.model, status_code=getattr(interrupted, "status_code", None),
                    request_id=getattr(interrupted, "request_id", None),
                )) from interrupted
            except BaseException:
                pending = state.release_attempt()  # nothing when the caller's abandonment released it
                if pending is not None:
                    await pending
                raise
            finally:
                if timer is not None:
                    timer.close()
                closer = getattr(stream, "aclose", None)
                if closer is not None:
                    await closer()
            state.slot = state.ctx = None
            deployment.inflight -= 1
            if not state.finished:  # the stream ended without a final chunk
                run.succeeded(slot, ctx is None or ctx.sent)
                await chain.finish_async(ctx, usage=state.usage)
                state.finished = True
            state.settle(None)
            return
        if interrupted is not None:
            raise run.final_error(StreamInterruptedError(
                "the stream failed after output reached the caller and no candidate could resume it: "
                f"{interrupted}", partial_content=delivered, partial_usage=state.usage,
            )) from interrupted
        raise run.exhausted()
    except LLMError as exc:
        state.settle(exc)
        raise
    except (asyncio.CancelledError, GeneratorExit):
        # Cancelled, or closed by the caller before its end: counted once, like a cancelled chat. A stream
        # closed after its final chunk was delivered is a success.
        state.settle(None)
        raise
    except BaseException:
        if state.open:  # not ours to count (a bug below us): only out of flight
            state.open = False
            core._stats["inflight"] -= 1
        raise


async def _resumes(core: RequestCore, run: RequestRun, slot: Slot, ctx: AttemptContext | None, error: LLMError,
                   resume_on_interrupt: bool, usage: TokenUsage | None) -> bool:
    """After output reached the caller: whether the policy lets another candidate continue the answer."""
    resumed = False
    if resume_on_interrupt:
        try:
            run.failed(slot, error)
            resumed = True
        except LLMError:
            pass  # the policy says stop: the caller reports the interruption
    else:
        run.record_failure(slot, error)
    await core._chain.finish_async(ctx, error=error, usage=usage)
    return resumed


class _StreamOpener:
    """Opens a streamed attempt inside the ``around_stream`` hooks: the before hooks, then the provider's stream."""

    __slots__ = ("call", "core", "ctx", "request", "slot")

    def __init__(self, core: RequestCore, ctx: AttemptContext, slot: Slot, request: list[Any],
                 call: dict[str, Any]) -> None:
        self.core, self.ctx, self.slot, self.request, self.call = core, ctx, slot, request, call

    async def __call__(self) -> AsyncIterator[LLMResponseChunk]:
        ctx = self.ctx
        instance = await self.core._prepare_attempt(self.core._chain.before(ctx), self.slot.deployment)
        ctx.sent = True
        stream = instance.chat_stream(self.request, callbacks=None, **self.call)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
