"""The circuit breaker moves only on outcomes of calls admitted in its current state.

A success that started before the circuit opened says nothing about the deployment now: it must not close the
circuit (it used to, 0.8 s after opening with a 30 s cooldown). After the cooldown exactly one probe is admitted and
only its outcome closes or re-opens the circuit. The clock is the breaker's own, driven by the test: no timing.
"""

from __future__ import annotations

import heapq
import random

from spoon_llm.routing import CircuitBreaker, CircuitState
from spoon_llm.testing import Fault, ProviderSimulator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_success_admitted_before_the_circuit_opened_does_not_close_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown=30.0, clock=clock)
    assert breaker.allow_request()
    slow = breaker.generation  # admitted while closed, answers late
    for _ in range(2):
        assert breaker.allow_request()
        breaker.record_failure(breaker.generation)
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.8
    breaker.record_success(slow)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow_request()
    # A late failure of the same era neither re-opens (resets the cooldown of) nor touches the probe.
    breaker.record_failure(slow)
    assert breaker.retry_at == 1000.0 + 30.0


def test_after_the_cooldown_only_the_probe_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=30.0, clock=clock)
    assert breaker.allow_request()
    stale = breaker.generation
    breaker.record_failure(breaker.generation)
    clock.now += 30.0
    assert breaker.allow_request()  # the probe
    probe = breaker.generation
    assert not breaker.allow_request() and not breaker.allow_request()
    # Stale outcomes and a stale hand-back while the probe is out: nothing moves, no second probe.
    breaker.record_success(stale)
    breaker.record_failure(stale)
    breaker.release_probe(stale)
    assert breaker.state is CircuitState.HALF_OPEN and not breaker.allow_request()
    assert breaker.snapshot()["probe_in_flight"] is True
    breaker.record_failure(probe)  # the probe failed: open again for a whole cooldown
    assert breaker.state is CircuitState.OPEN and breaker.retry_at == clock.now + 30.0
    clock.now += 30.0
    assert breaker.allow_request()
    breaker.record_success(breaker.generation)
    assert breaker.state is CircuitState.CLOSED


def test_a_cancelled_probe_hands_the_probe_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    breaker.record_failure()
    clock.now += 5.0
    assert breaker.allow_request()
    breaker.release_probe(breaker.generation)
    assert breaker.allow_request()  # the next caller probes


def test_a_flapping_upstream_gets_only_one_probe_per_cooldown() -> None:
    """Upstream fails 2 s, recovers 2 s, for 10 minutes; 40 calls a second, answered 0.05-1.5 s after sent."""
    clock = Clock()
    cooldown = 3.0
    openings: list[float] = []
    breaker = CircuitBreaker(failure_threshold=3, cooldown=cooldown, clock=clock,
                             on_change=lambda old, new: openings.append(clock.now) if new is CircuitState.OPEN
                             else None)
    rng = random.Random(7)
    start = clock.now
    pending: list[tuple[float, int, int, bool]] = []  # (answer time, sequence, generation, outcome)
    admitted: list[float] = []
    sequence = 0
    t = start
    while t < start + 600:
        t += rng.expovariate(40.0)
        while pending and pending[0][0] <= t:  # answers due before this call, in time order
            clock.now, _, generation, healthy = heapq.heappop(pending)
            (breaker.record_success if healthy else breaker.record_failure)(generation)
        clock.now = t
        if breaker.allow_request():
            admitted.append(t)
            sequence += 1
            # Served as the upstream was when the call reached it: one sent just before a failing spell succeeds
            # after the circuit opened.
            healthy = int((t - start) // 2.0) % 2 == 1
            heapq.heappush(pending, (t + rng.uniform(0.05, 1.5), sequence, breaker.generation, healthy))
    assert len(openings) > 20  # it flapped
    # After each opening, nothing reaches the upstream for a whole cooldown; then exactly one probe, alone until
    # its answer decides.
    for opened in openings:
        during = [a for a in admitted if opened < a < opened + cooldown + 0.05]
        assert len(during) <= 1 and all(a >= opened + cooldown for a in during), (opened, during)


async def test_a_stream_admitted_before_the_circuit_opened_does_not_close_it() -> None:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager

    clock = Clock()
    async with ProviderSimulator() as sim:
        section = {"type": "openai", "base_url": sim.openai_base_url}
        manager = LLMManager(ConfigurationManager({
            "providers": {"primary": {**section, "api_key": "sk-test-circuit-primary-0001", "model": "m-primary"},
                          "backup": {**section, "api_key": "sk-test-circuit-backup-00001", "model": "m-backup"}},
            "fallback_chain": ["primary", "backup"], "retry": {"max_retries": 0},
        }, env={}), middleware=[], circuit_breaker={"failure_threshold": 2, "cooldown": 30.0, "clock": clock})
        try:
            stream = manager.chat_stream("a long answer")
            first = await stream.__anext__()  # admitted on the primary while its circuit was closed
            assert first.content
            sim.fault("openai", Fault.server_error(), model="m-primary", times=2)
            for i in range(2):
                assert (await manager.chat(f"fails over {i}")).deployment == "backup"
            circuit = manager.get_provider_status()["primary"]["circuit"]
            assert circuit["state"] == "open"
            chunks = [chunk async for chunk in stream]  # the old stream ends well...
            assert chunks[-1].kind == "final" and chunks[-1].metadata["deployment"] == "primary"
            assert manager.get_provider_status()["primary"]["circuit"]["state"] == "open"  # ...proving nothing
            sim.reset()
            for i in range(5):
                await manager.chat(f"while open {i}")
            assert {r.body["model"] for r in sim.requests} == {"m-backup"}
            clock.now += 30.0
            assert (await manager.chat("the probe")).deployment == "primary"
            assert manager.get_provider_status()["primary"]["circuit"]["state"] == "closed"
        finally:
            await manager.cleanup()
