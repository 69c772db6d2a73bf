"""Failover under upstream faults: each scenario's documented outcome, within its time bound.

The configuration is the README's, scaled down in time: a primary and a backup in ``fallback_chain``,
``retry.max_retries = 2``, a provider ``timeout`` (0.5 s here for 30 s), with and without a ``request_timeout``
(20 s here for 120 s). Faults come from the project's simulator on 127.0.0.1. The time bounds are upper bounds
far above what each scenario needs (they catch a request held for a whole deadline, or for ever), never a
speed requirement.

| scenario                          | expected outcome                                                    |
|-----------------------------------|---------------------------------------------------------------------|
| 429 with Retry-After              | retried on the primary after the wait; the primary answers          |
| 429 persistent                    | the backup answers                                                  |
| 500 once                          | retried; the primary answers                                        |
| 503 persistent                    | the backup answers                                                  |
| TCP reset                         | retried; the primary answers                                        |
| accepted, never answers           | each attempt bounded by the provider timeout, then the backup       |
| slow first token (stream)         | ``first_token_timeout`` fires, retried, then the backup streams     |
| stream cut mid-answer             | ``StreamInterruptedError`` naming the cut; resumed on the backup    |
|                                   | with ``resume_on_interrupt``                                        |
| stream stall (silent or trickling)| ``stream_idle_timeout`` fires: interrupted (or resumed)             |
| malformed chunk before any text   | retried, then the backup streams                                    |
| stream without its end            | interrupted (or resumed), never a silent success                    |
| context length exceeded           | the backup (next candidate) answers                                 |
| fallback that rejects prefill     | asked again without the prefill (restarted); a model not declared   |
|                                   | for prefill (section, per-model list, type) restarts at once        |
| content filter                    | ``ContentFilterError`` at once, no fallback                         |
| a primary that flaps              | every request answered (the backup while the primary's circuit is   |
|                                   | open); only one probe per cooldown reaches the primary while open   |
| accounting                        | usage and cost are the backup's, the model that answered            |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ConfigurationError, ContentFilterError, LLMError, StreamInterruptedError
from spoon_llm.manager import LLMManager
from spoon_llm.routing.resume import accepts_prefill
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

from ._raw import Raw, RawServer
from ._vendors import OPENAI, sse

PROVIDER_TIMEOUT = 0.5
REQUEST_TIMEOUT = 20.0
BOUND = 15.0  # far above any scenario's need; far below "held for the whole deadline or for ever"
TEXT = "alpha beta gamma delta epsilon zeta eta theta iota kappa"


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture(params=[None, REQUEST_TIMEOUT], ids=["no-request-timeout", "request-timeout"])
async def manager(request: pytest.FixtureRequest, sim: ProviderSimulator) -> AsyncIterator[LLMManager]:
    section = {"type": "openai", "base_url": sim.openai_base_url, "timeout": PROVIDER_TIMEOUT}
    data: dict[str, Any] = {
        "providers": {
            "primary": {**section, "api_key": "sk-test-failover-primary-0001", "model": "m-primary"},
            "backup": {**section, "api_key": "sk-test-failover-backup-00001", "model": "m-backup"},
        },
        "fallback_chain": ["primary", "backup"],
        "retry": {"max_retries": 2, "initial_backoff": 0.01, "max_backoff": 0.05},
        "pricing": {"m-primary": {"input_per_1m": 100.0, "output_per_1m": 100.0},
                    "m-backup": {"input_per_1m": 1.0, "output_per_1m": 2.0}},
    }
    if request.param is not None:
        data["request_timeout"] = request.param
    sim.reset()
    sim.script(None, Reply(text=TEXT, usage=Usage(input_tokens=10, output_tokens=10),
                           chunks=[w + " " for w in TEXT.split()]))
    llm = LLMManager(ConfigurationManager(data, env={}))
    try:
        yield llm
    finally:
        await llm.cleanup()


def _models(sim: ProviderSimulator) -> list[str]:
    return [r.body["model"] for r in sim.requests_for("openai", "chat")]


async def _stream(manager: LLMManager, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    text, metadata, restarts = "", {}, 0
    async for chunk in manager.chat_stream("tell me", **kwargs):
        text = chunk.content
        restarts += bool(chunk.metadata.get("restarted"))
        if chunk.kind == "final":
            metadata = {**chunk.metadata, "restarts": restarts}
    return text, metadata


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started
        assert self.elapsed < BOUND, f"took {self.elapsed:.1f}s"


@pytest.mark.parametrize(("fault", "times", "answered_by", "primary_tries"), [
    (Fault.rate_limited(retry_after=0.05), 1, "primary", 2),
    (Fault.rate_limited(retry_after=0.05), None, "backup", 3),
    (Fault.server_error(), 1, "primary", 2),
    (Fault.unavailable(), None, "backup", 3),
    (Fault.connection_reset(), 1, "primary", 2),
    (Fault.slow(60.0), None, "backup", 3),  # accepted, never answers (within the provider timeout)
    (Fault.context_length_exceeded(limit=10), None, "backup", 1),
], ids=["429-retry-after", "429-persistent", "500-once", "503-persistent", "tcp-reset", "no-response",
        "context-length"])
async def test_chat_fails_over(manager: LLMManager, sim: ProviderSimulator, fault: Fault, times: int | None,
                               answered_by: str, primary_tries: int) -> None:
    sim.fault("openai", fault, model="m-primary", times=times)
    with Timer():
        response = await manager.chat("hello")
    assert response.deployment == answered_by
    assert _models(sim).count("m-primary") == primary_tries
    assert response.content == TEXT


async def test_a_content_filter_refusal_is_final(manager: LLMManager, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.error(400, "Your request was rejected as a result of our safety system.",
                                    code="content_policy_violation", error_type="invalid_request_error"),
              model="m-primary")
    with Timer(), pytest.raises(ContentFilterError):
        await manager.chat("hello")
    assert _models(sim) == ["m-primary"]


async def test_usage_and_cost_are_those_of_the_model_that_answered(manager: LLMManager,
                                                                   sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.server_error(), model="m-primary", times=None)
    response = await manager.chat("hello")
    assert response.deployment == "backup" and response.model == "m-backup"
    assert response.usage.input_tokens == 10 and response.usage.output_tokens == 10
    assert response.cost is not None
    assert response.cost.total_cost == pytest.approx(10 * 1.0 / 1e6 + 10 * 2.0 / 1e6)
    assert [a.deployment for a in response.attempts] == ["primary"] * 3 + ["backup"]


async def test_a_slow_first_token_falls_over(manager: LLMManager, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.slow(60.0), model="m-primary", times=None)
    with Timer():
        text, metadata = await _stream(manager, first_token_timeout=0.3)
    assert text.strip() == TEXT and metadata["deployment"] == "backup"
    assert _models(sim).count("m-primary") == 3


async def test_a_malformed_chunk_before_any_text_falls_over(manager: LLMManager, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.malformed_json(), model="m-primary", times=None)
    with Timer():
        text, metadata = await _stream(manager)
    assert text.strip() == TEXT and metadata["deployment"] == "backup"


@pytest.mark.parametrize("fault", [Fault.disconnect(after=3), Fault.truncated_stream(after=3),
                                   Fault(chunk_delay=0.0, disconnect_after=3)],
                         ids=["cut-mid-answer", "no-end", "cut-again"])
@pytest.mark.parametrize("resume", [False, True], ids=["no-resume", "resume"])
async def test_a_stream_cut_mid_answer(manager: LLMManager, sim: ProviderSimulator, fault: Fault,
                                       resume: bool) -> None:
    sim.fault("openai", fault, model="m-primary", times=None)
    with Timer():
        if not resume:
            with pytest.raises(StreamInterruptedError) as caught:
                await _stream(manager)
            assert caught.value.partial_content  # what reached the caller, and the cut as the cause
            assert isinstance(caught.value.__cause__, LLMError)
            return
        text, metadata = await _stream(manager, resume_on_interrupt=True)
    # The backup (an OpenAI-style API, no prefill) restarted the answer, and said so once.
    assert metadata["deployment"] == "backup" and text.strip() == TEXT and metadata["restarts"] == 1


@pytest.mark.parametrize("request_timeout", [None, REQUEST_TIMEOUT], ids=["no-request-timeout", "request-timeout"])
@pytest.mark.parametrize("end", ["hang", "trickle"])
@pytest.mark.parametrize("resume", [False, True], ids=["no-resume", "resume"])
async def test_a_stalled_stream(sim: ProviderSimulator, end: str, resume: bool, request_timeout: float | None) -> None:
    """Two chunks, then silence (or SSE comments trickling in, which reset no read timeout of ours)."""
    async with RawServer() as raw:
        raw.answer = Raw(headers={"content-type": "text/event-stream"}, parts=[sse(*OPENAI.stream_events[:2])],
                         chunked=True, end=end)
        sim.reset()
        section = {"type": "openai", "timeout": 30.0}
        llm = LLMManager(ConfigurationManager({
            "providers": {
                "primary": {**section, "base_url": raw.url + "/v1", "api_key": "sk-test-failover-primary-0001",
                            "model": "m-primary", "stream_idle_timeout": 0.3},
                "backup": {**section, "base_url": sim.openai_base_url, "api_key": "sk-test-failover-backup-00001",
                           "model": "m-backup"},
            },
            "fallback_chain": ["primary", "backup"], "retry": {"max_retries": 2},
            **({} if request_timeout is None else {"request_timeout": request_timeout}),
        }, env={}))
        try:
            with Timer():
                if not resume:
                    with pytest.raises(StreamInterruptedError) as caught:
                        await _stream(llm)
                    assert caught.value.partial_content == "hello é 雪"
                    assert "stalled" in str(caught.value)
                    return
                text, metadata = await _stream(llm, resume_on_interrupt=True)
            # The primary is retried (it stalls again), then the backup answers from the start. Each attempt that
            # delivered a chunk restarts the answer once; on a loaded machine a retry of the primary may fail before
            # its first chunk, so the count is 1 to 3, never 0 (the backup's answer is always a restart).
            assert metadata["deployment"] == "backup" and 1 <= metadata["restarts"] <= 3
            assert text == "Simulated reply to: tell me"
        finally:
            await llm.cleanup()


@pytest.mark.parametrize(("declared", "sends_prefill"), [
    ({"assistant_prefill": True}, True),
    ({"prefill_models": ["m-back*"]}, True),  # declared for this model only (a pattern)
    ({}, False),
    ({"prefill_models": ["other-*"]}, False),  # declared for other models only
    ({"assistant_prefill": True, "no_prefill_models": ["m-backup"]}, False),  # the section's yes, this model's no
], ids=["declared-prefill-rejected", "model-declared-prefill-rejected", "no-prefill", "other-models-prefill",
        "model-overrides-section"])
@pytest.mark.parametrize("request_timeout", [None, REQUEST_TIMEOUT], ids=["no-request-timeout", "request-timeout"])
async def test_resume_where_the_fallback_does_not_take_a_prefill(sim: ProviderSimulator, declared: dict[str, Any],
                                                                 sends_prefill: bool,
                                                                 request_timeout: float | None) -> None:
    """A fallback that rejects the prefill (400) is asked again cleanly; one not declared for it restarts."""
    section = {"type": "openai", "base_url": sim.openai_base_url}
    backup: dict[str, Any] = {**section, "api_key": "sk-test-failover-backup-00001", "model": "m-backup", **declared}
    sim.reset()
    sim.script(None, Reply(text=TEXT, chunks=[w + " " for w in TEXT.split()]))
    sim.fault("openai", Fault.disconnect(after=4), model="m-primary", times=None)
    if sends_prefill:  # declared, yet the model rejects it with a 400, as many do
        sim.fault("openai", Fault.error(400, "assistant prefill is not supported for this model"), model="m-backup")
    llm = LLMManager(ConfigurationManager({
        "providers": {"primary": {**section, "api_key": "sk-test-failover-primary-0001", "model": "m-primary"},
                      "backup": backup},
        "fallback_chain": ["primary", "backup"], "retry": {"max_retries": 0},
        **({} if request_timeout is None else {"request_timeout": request_timeout}),
    }, env={}))
    try:
        with Timer():
            text, metadata = await _stream(llm, resume_on_interrupt=True)
        assert metadata["deployment"] == "backup" and text.strip() == TEXT and metadata["restarts"] == 1
        backup_bodies = [r.body for r in sim.requests_for("openai", "chat") if r.body["model"] == "m-backup"]
        # With a prefill: the 400, then the clean restart. Without: one clean request (a prefill sent by mistake
        # would be continued by the simulator, with no restart reported).
        roles = [b["messages"][-1]["role"] for b in backup_bodies]
        assert roles == (["assistant", "user"] if sends_prefill else ["user"]), roles
    finally:
        await llm.cleanup()


async def test_prefill_is_decided_for_the_model_asked_for(sim: ProviderSimulator) -> None:
    """The decision reads the model of the attempt (a route may ask a section for several models)."""
    llm = LLMManager(ConfigurationManager({"providers": {
        "claude": {"type": "anthropic", "base_url": sim.anthropic_base_url, "api_key": "sk-ant-test-prefill-0001",
                   "model": "claude-new", "no_prefill_models": ["claude-new*"]},
        "local": {"type": "openai", "base_url": sim.openai_base_url, "api_key": "sk-test-prefill-local-0001",
                  "model": "m-local", "prefill_models": ["m-cont*"]},
    }}, env={}))
    try:
        claude, local = llm.router.deployments["claude"], llm.router.deployments["local"]
        assert not accepts_prefill(claude) and not accepts_prefill(claude, "claude-new-2")
        assert accepts_prefill(claude, "claude-older")  # the type's declaration for the models not listed
        assert not accepts_prefill(local) and accepts_prefill(local, "m-continues")
    finally:
        await llm.cleanup()


def test_a_model_in_both_prefill_lists_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="prefill_models and no_prefill_models") as caught:
        ConfigurationManager({"providers": {"backup": {"type": "openai", "api_key": "sk-test-failover-backup-00001",
                                                       "prefill_models": ["m-a", "m-b"],
                                                       "no_prefill_models": ["m-b"]}}}, env={})
    assert "providers.backup" in str(caught.value) and "'m-b'" in str(caught.value)


async def test_the_final_error_names_the_original_interruption(sim: ProviderSimulator) -> None:
    section = {"type": "openai", "base_url": sim.openai_base_url}
    sim.reset()
    sim.script(None, Reply(text=TEXT, chunks=[w + " " for w in TEXT.split()]))
    sim.fault("openai", Fault.disconnect(after=4), model="m-primary", times=None)
    sim.fault("openai", Fault.error(400, "this fallback refuses the request"), model="m-backup", times=None)
    llm = LLMManager(ConfigurationManager({
        "providers": {"primary": {**section, "api_key": "sk-test-failover-primary-0001", "model": "m-primary"},
                      "backup": {**section, "api_key": "sk-test-failover-backup-00001", "model": "m-backup"}},
        "fallback_chain": ["primary", "backup"], "retry": {"max_retries": 0},
    }, env={}))
    try:
        with pytest.raises(StreamInterruptedError) as caught:
            await _stream(llm, resume_on_interrupt=True)
        first_cut = caught.value.__cause__
        assert isinstance(first_cut, LLMError) and "refuses" not in str(first_cut)
        assert str(first_cut) in str(caught.value) and "refuses" in str(caught.value)
        assert caught.value.partial_content
    finally:
        await llm.cleanup()


class Clock:
    """The circuit breakers' clock, moved by the test: cooldowns pass without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("request_timeout", [None, REQUEST_TIMEOUT], ids=["no-request-timeout", "request-timeout"])
async def test_a_primary_that_flaps(sim: ProviderSimulator, request_timeout: float | None) -> None:
    """The primary fails for 2 s, recovers for 2 s, over and over; three requests at a time every 0.25 s.

    Time is the breakers' clock, driven by the test (cooldown 3 s): no request waits for it. Every request is
    answered; while the primary's circuit is open nothing reaches it until the cooldown has passed, then one probe.
    """
    clock, cooldown = Clock(), 3.0
    section = {"type": "openai", "base_url": sim.openai_base_url, "timeout": PROVIDER_TIMEOUT}
    llm = LLMManager(ConfigurationManager({
        "providers": {"primary": {**section, "api_key": "sk-test-failover-primary-0001", "model": "m-primary"},
                      "backup": {**section, "api_key": "sk-test-failover-backup-00001", "model": "m-backup"}},
        "fallback_chain": ["primary", "backup"],
        "retry": {"max_retries": 2, "initial_backoff": 0.001, "max_backoff": 0.002},
        **({} if request_timeout is None else {"request_timeout": request_timeout}),
    }, env={}), circuit_breaker={"failure_threshold": 2, "cooldown": cooldown, "clock": clock})
    openings: list[float] = []
    llm.add_observer(lambda event: openings.append(clock.now) if (
        event.kind == "circuit_change" and event.deployment == "primary" and event.data["new"] == "open") else None)

    def primary_requests() -> int:
        return sum(1 for r in sim.requests_for("openai", "chat") if r.body["model"] == "m-primary")

    earlier = 0  # primary requests of the spells before the current one (the simulator forgets them on reset)
    answered_by: dict[str, int] = {}
    failing: bool | None = None
    try:
        for step in range(160):  # 40 s of the clock
            clock.now = 1000.0 + step * 0.25
            spell_fails = int(step * 0.25 // 2) % 2 == 0
            if spell_fails is not failing:
                failing = spell_fails
                earlier += primary_requests()
                sim.reset()
                sim.script(None, Reply(text=TEXT))
                if failing:
                    sim.fault("openai", Fault.server_error(), model="m-primary", times=None)
            state = llm.get_provider_status()["primary"]["circuit"]["state"]
            before = primary_requests()
            responses = await asyncio.gather(*(llm.chat(f"request {step}.{i}") for i in range(3)))
            reached = primary_requests() - before
            for response in responses:
                answered_by[response.deployment or ""] = answered_by.get(response.deployment or "", 0) + 1
            if state == "open" and clock.now - openings[-1] < cooldown:
                assert reached == 0, (clock.now, openings[-1])
            elif state != "closed":
                assert reached <= 1, (clock.now, state, reached)  # the probe alone
        assert len(openings) >= 5  # it flapped
        assert answered_by.get("primary", 0) > 0 and answered_by.get("backup", 0) > 0, answered_by
        assert sum(answered_by.values()) == 160 * 3
        assert earlier + primary_requests() < 160 * 3  # the open circuit kept traffic off the primary
    finally:
        await llm.cleanup()
