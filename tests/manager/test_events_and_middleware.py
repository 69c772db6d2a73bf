"""Lifecycle events and the middleware hooks, observed through real requests."""

import pytest

from spoon_llm.errors import BudgetExceededError, RateLimitError
from spoon_llm.middleware import Middleware
from spoon_llm.testing import Fault

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


async def test_events_trace_a_request_with_a_retry_and_a_fallback(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 1,
                                                                             "initial_backoff": 0.01})
    events = []
    manager.add_observer(events.append)
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=2)
    await manager.chat("hi", tags={"team": "search"})
    kinds = [e.kind for e in events]
    assert kinds == ["request_start", "attempt_start", "attempt_end", "retry", "attempt_start", "attempt_end",
                     "fallback", "attempt_start", "attempt_end", "request_end"]
    assert len({e.request_id for e in events}) == 1
    end = events[-1]
    assert end.success and end.deployment == "backup" and end.usage.output_tokens > 0
    assert end.tags == {"team": "search"} and end.attempt == 3
    assert [e.error.status_code for e in events if e.kind == "attempt_end" and e.error] == [503, 503]


async def test_stream_events_include_first_token_and_chunk_count(sim, make_manager):
    manager = make_manager(TWO)
    events = []
    manager.add_observer(events.append)
    chunks = [c async for c in manager.chat_stream("hi")]
    kinds = [e.kind for e in events]
    assert kinds == ["request_start", "attempt_start", "first_token", "attempt_end", "request_end"]
    assert events[-1].chunk_count == len(chunks)
    assert events[2].latency > 0


async def test_circuit_changes_are_events(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0},
                           manager_kwargs={"circuit_breaker": {"failure_threshold": 1}})
    events = []
    manager.add_observer(events.append)
    sim.fault("openai", Fault.server_error(), model="model-primary", times=1)
    await manager.chat("hi")
    change = [e for e in events if e.kind == "circuit_change"]
    assert [(e.deployment, e.data) for e in change] == [("primary", {"old": "closed", "new": "open"})]


async def test_a_broken_observer_never_breaks_the_request(sim, make_manager):
    manager = make_manager(TWO)

    def explode(event):
        raise RuntimeError("observer bug")

    manager.add_observer(explode)
    assert (await manager.chat("hi")).content


class Recorder(Middleware):
    def __init__(self, name, log, refuse=None):
        self.name, self.log, self.refuse = name, log, refuse

    async def before_attempt(self, ctx):
        self.log.append((self.name, "before", ctx.deployment.name, ctx.effective_model))
        if self.refuse and ctx.deployment.name in self.refuse:
            raise self.refuse[ctx.deployment.name]

    async def after_attempt(self, ctx, *, response=None, usage=None, error=None):
        self.log.append((self.name, "after", ctx.deployment.name, type(error).__name__ if error else
                         usage.total_tokens > 0))


async def test_middleware_wraps_each_attempt_in_order(sim, make_manager):
    log = []
    manager = make_manager(TWO, manager_kwargs={"middleware": [Recorder("a", log), Recorder("b", log)]})
    await manager.chat("hi")
    assert log == [("a", "before", "primary", "model-primary"), ("b", "before", "primary", "model-primary"),
                   ("b", "after", "primary", True), ("a", "after", "primary", True)]
    log.clear()
    [c async for c in manager.chat_stream("hi")]
    assert [entry[:2] for entry in log] == [("a", "before"), ("b", "before"), ("b", "after"), ("a", "after")]
    assert log[-1][3] is True  # the stream's usage reached after_attempt


class PlainHooks(Middleware):
    """Hooks as plain functions: one returns None, the other an awaitable only when it has to wait."""

    name = "plain"

    def __init__(self, log):
        self.log = log

    def before_attempt(self, ctx):
        self.log.append(("plain", "before"))
        if ctx.tags and ctx.tags.get("wait"):
            return self._wait()
        return None

    async def _wait(self):
        self.log.append(("plain", "waited"))

    def after_attempt(self, ctx, *, response=None, usage=None, error=None):
        self.log.append(("plain", "after", usage.total_tokens if usage else None))


class AfterOnly(Middleware):
    name = "after_only"

    def __init__(self, log):
        self.log = log

    async def after_attempt(self, ctx, *, response=None, usage=None, error=None):
        self.log.append(("after_only", "after"))


async def test_plain_and_async_hooks_mix_and_only_what_a_hook_returns_is_awaited(sim, make_manager):
    log = []
    manager = make_manager(TWO, manager_kwargs={"middleware": [PlainHooks(log), AfterOnly(log), Recorder("a", log)]})
    await manager.chat("hi")
    assert [entry[:2] for entry in log] == [("plain", "before"), ("a", "before"), ("a", "after"),
                                            ("after_only", "after"), ("plain", "after")]
    assert log[-1][2] > 0
    log.clear()
    await manager.chat("hi", tags={"wait": "yes"})
    assert log[:2] == [("plain", "before"), ("plain", "waited")]
    log.clear()
    [c async for c in manager.chat_stream("hi")]
    assert [entry[:2] for entry in log] == [("plain", "before"), ("a", "before"), ("a", "after"),
                                            ("after_only", "after"), ("plain", "after")]


async def test_a_refusal_runs_the_after_hooks_of_the_middleware_that_passed(sim, make_manager):
    log = []
    refuse = {"primary": RateLimitError("no room", retry_after=120)}
    manager = make_manager(TWO, fallback_chain=["primary", "backup"],
                           manager_kwargs={"middleware": [PlainHooks(log), Recorder("limiter", log, refuse),
                                                          AfterOnly(log)]})
    response = await manager.chat("hi")
    assert response.deployment == "backup"
    first_attempt = log[:log.index(("plain", "before"), 1)]
    # The limiter refused: only the middleware whose before hook passed get an after hook (the limiter's own
    # before raised, and the one after it never ran).
    assert [entry[:2] for entry in first_attempt] == [("plain", "before"), ("limiter", "before"),
                                                       ("plain", "after")]


async def test_local_rate_limit_moves_to_another_deployment_without_opening_the_circuit(sim, make_manager):
    log = []
    refuse = {"primary": RateLimitError("key budget for this minute is used up", retry_after=120)}
    manager = make_manager(TWO, fallback_chain=["primary", "backup"],
                           manager_kwargs={"middleware": [Recorder("limiter", log, refuse)],
                                           "circuit_breaker": {"failure_threshold": 1}})
    response = await manager.chat("hi")
    assert response.deployment == "backup"
    assert [r.body["model"] for r in sim.requests] == ["model-backup"]  # primary was never called
    assert manager.get_provider_status()["primary"]["circuit"]["state"] == "closed"


async def test_budget_refusal_stops_the_request(sim, make_manager):
    refuse = {"primary": BudgetExceededError("monthly budget exhausted"),
              "backup": BudgetExceededError("monthly budget exhausted")}
    manager = make_manager(TWO, fallback_chain=["primary", "backup"],
                           manager_kwargs={"middleware": [Recorder("budget", [], refuse)]})
    with pytest.raises(BudgetExceededError):
        await manager.chat("hi")
    assert sim.requests == []


async def test_a_cancelled_request_still_ends_for_observers(sim, make_manager):
    import asyncio

    manager = make_manager(TWO)
    events = []
    manager.add_observer(events.append)
    sim.fault("openai", Fault.slow(5), times=1)
    task = asyncio.ensure_future(manager.chat("hi"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    end = events[-1]
    assert end.kind == "request_end" and end.success is False and end.data["cancelled"] is True
    assert manager.get_stats()["cancelled"] == 1 and manager.get_stats()["inflight"] == 0
    await manager.cleanup()
