"""A wrapper split in two plain halves (``Middleware.short_circuit``): lookup before the attempt, store after it.

Observed through real requests to the simulator: what a hit skips, when the store runs (and when it never does),
and that the halves behave the same whether the manager calls them directly or nests them among other wrappers.
"""

import logging

import pytest

from spoon_llm.middleware import Middleware
from spoon_llm.middleware.chain import MiddlewareChain
from spoon_llm.testing import Fault
from spoon_llm.types import LLMResponse, TokenUsage

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


class Counting(Middleware):
    """Before/after hooks that count, and mark the answer the way cost accounting prices it."""

    name = "counting"

    def __init__(self):
        self.before = self.after = 0

    def before_attempt(self, ctx):
        self.before += 1

    def after_attempt(self, ctx, *, response=None, usage=None, error=None):
        self.after += 1
        if isinstance(response, LLMResponse):
            response.metadata["priced"] = True


class Remember(Middleware):
    """A dict cache by prompt written as the two halves only (no ``around_attempt`` of its own)."""

    name = "remember"

    def __init__(self, skip=(), fail_store=False):
        self.answers = {}
        self.lookups = []
        self.stored = []
        self.skip = set(skip)
        self.fail_store = fail_store

    def short_circuit(self):
        return self.lookup, self.store

    def lookup(self, ctx):
        prompt = ctx.raw_messages[-1]["content"]
        self.lookups.append((prompt, ctx.deployment.name))
        if prompt in self.answers:
            return LLMResponse(content=self.answers[prompt], provider=ctx.provider, model=ctx.effective_model,
                               usage=TokenUsage(), metadata={"remembered": True})
        if prompt not in self.skip:
            ctx.ticket = prompt
        return None

    def store(self, ctx, response):
        if self.fail_store:
            raise OSError("disk full")
        self.stored.append((ctx.ticket, ctx.deployment.name, response.metadata.get("priced"), ctx.sent))
        self.answers[ctx.ticket] = response.content


class Watching(Middleware):
    """An ordinary wrapper that calls through and records the answers it saw."""

    name = "watching"

    def __init__(self):
        self.seen = []

    async def around_attempt(self, ctx, call_next):
        response = await call_next()
        self.seen.append((response.content, bool(response.metadata.get("remembered"))))
        return response


def test_the_manager_calls_the_halves_only_of_a_lone_wrapper():
    remember = Remember()
    alone = MiddlewareChain([remember, Counting()])
    assert alone.lookup == remember.lookup and alone.store == remember.store and len(alone.arounds) == 1
    nested = MiddlewareChain([remember, Watching(), Counting()])
    assert nested.lookup is None and nested.store is None and len(nested.arounds) == 2
    assert MiddlewareChain([Counting()]).lookup is None


async def test_a_lookup_answers_and_the_store_sees_the_priced_answer(sim, make_manager):
    remember, counting = Remember(), Counting()
    manager = make_manager(TWO, manager_kwargs={"middleware": [remember, counting]})
    first = await manager.chat("hi")
    assert sim.request_count == 1 and (counting.before, counting.after) == (1, 1)
    # Stored once, after the after hooks priced it, for the deployment that answered.
    assert remember.stored == [("hi", "primary", True, True)]
    again = await manager.chat("hi")
    assert again.content == first.content and again.metadata["remembered"]
    assert sim.request_count == 1 and (counting.before, counting.after) == (1, 1)  # nothing admitted, nothing settled
    assert manager.router.deployments["primary"].requests == 1  # a hit is not credited to the deployment
    assert [a.deployment for a in again.attempts] == ["primary"] and again.fallback_path == ["primary"]
    assert len(remember.stored) == 1  # a hit is never stored again


async def test_failed_attempts_are_never_stored_and_each_slot_is_looked_up(sim, make_manager):
    remember = Remember()
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0},
                           manager_kwargs={"middleware": [remember, Counting()]})
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)
    response = await manager.chat("hi")
    assert response.fallback_path == ["primary", "backup"]
    assert remember.lookups == [("hi", "primary"), ("hi", "backup")]
    assert remember.stored == [("hi", "backup", True, True)]


async def test_a_lookup_that_leaves_no_ticket_is_never_followed_by_a_store(sim, make_manager):
    remember = Remember(skip={"private"})
    manager = make_manager(TWO, manager_kwargs={"middleware": [remember, Counting()]})
    await manager.chat("private")
    await manager.chat("private")
    assert sim.request_count == 2 and remember.stored == []
    chunks = [c async for c in manager.chat_stream("streamed")]
    assert chunks[-1].kind == "final" and remember.stored == []  # the halves wrap whole answers only


@pytest.mark.parametrize("nested", [False, True], ids=["called by the manager", "nested among wrappers"])
async def test_a_failing_store_is_logged_and_the_answer_served(sim, make_manager, caplog, nested):
    remember = Remember(fail_store=True)
    middleware = [remember, Watching(), Counting()] if nested else [remember, Counting()]
    manager = make_manager(TWO, manager_kwargs={"middleware": middleware})
    assert (manager._chain.lookup is None) == nested
    with caplog.at_level(logging.WARNING, logger="spoon_llm.middleware"):
        response = await manager.chat("hi")
    assert response.content and remember.answers == {}
    assert any("Remember.store failed (OSError)" in r.getMessage() for r in caplog.records)


async def test_among_other_wrappers_the_halves_nest_as_a_wrapper(sim, make_manager):
    remember, watching = Remember(), Watching()
    manager = make_manager(TWO, manager_kwargs={"middleware": [remember, watching, Counting()]})
    first = await manager.chat("hi")
    again = await manager.chat("hi")
    assert sim.request_count == 1 and again.metadata["remembered"] and again.content == first.content
    assert remember.stored == [("hi", "primary", True, True)]
    assert watching.seen == [(first.content, False)]  # the outer hit never reached the inner wrapper
