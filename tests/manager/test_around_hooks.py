"""The chain's wrapper hooks (``around_attempt`` / ``around_stream``), observed through real requests."""

from spoon_llm.middleware import Middleware
from spoon_llm.middleware.chain import MiddlewareChain
from spoon_llm.testing import Fault
from spoon_llm.types import LLMResponse, LLMResponseChunk, TokenUsage

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


class Counting(Middleware):
    """Before/after hooks that count, and mark the answer the way cost accounting does."""

    name = "counting"

    def __init__(self):
        self.before = self.after = 0
        self.errors = []

    def before_attempt(self, ctx):
        self.before += 1

    def after_attempt(self, ctx, *, response=None, usage=None, error=None):
        self.after += 1
        if error is not None:
            self.errors.append(type(error).__name__)
        if isinstance(response, LLMResponse):
            response.metadata["priced"] = True


class Canned(Middleware):
    """Answers every attempt itself, whole or streamed: nothing reaches the provider."""

    name = "canned"

    async def around_attempt(self, ctx, call_next):
        return LLMResponse(content=f"canned for {ctx.deployment.name}", provider=ctx.provider,
                           model=ctx.effective_model, usage=TokenUsage(input_tokens=3, output_tokens=2))

    async def around_stream(self, ctx, open_stream):
        yield LLMResponseChunk(delta="can", content="can")
        yield LLMResponseChunk(delta="ned", content="canned", kind="final", finish_reason="stop",
                               usage=TokenUsage(input_tokens=3, output_tokens=2))


class Watching(Middleware):
    """Calls through, and records what it saw come back (or fail)."""

    name = "watching"

    def __init__(self):
        self.seen = []
        self.chunks = []

    async def around_attempt(self, ctx, call_next):
        try:
            response = await call_next()
        except Exception as exc:
            self.seen.append(("error", ctx.deployment.name, type(exc).__name__))
            raise
        self.seen.append(("answer", ctx.deployment.name, response.metadata.get("priced"), ctx.sent))
        return response

    async def around_stream(self, ctx, open_stream):
        async for chunk in open_stream():
            self.chunks.append(chunk.delta)
            yield chunk


async def test_an_around_hook_answers_without_reaching_the_provider_or_reserving(sim, make_manager):
    counting = Counting()
    manager = make_manager(TWO, manager_kwargs={"middleware": [Canned(), counting]})
    response = await manager.chat("hi")
    assert response.content == "canned for primary"
    assert sim.request_count == 0
    # No middleware inside the wrapper was admitted, so none has anything to settle.
    assert (counting.before, counting.after) == (0, 0)
    state = manager.router.deployments["primary"]
    assert state.requests == 0  # neither counted nor credited to the deployment
    assert [a.deployment for a in response.attempts] == ["primary"] and response.attempts[0].error_type is None
    chunks = [c async for c in manager.chat_stream("hi")]
    assert [c.content for c in chunks] == ["can", "canned"]
    assert chunks[-1].metadata["fallback_path"] == ["primary"]
    assert sim.request_count == 0 and (counting.before, counting.after) == (0, 0)


async def test_a_wrapper_that_calls_through_sees_the_answer_after_the_after_hooks(sim, make_manager):
    watching, counting = Watching(), Counting()
    manager = make_manager(TWO, manager_kwargs={"middleware": [watching, counting]})
    response = await manager.chat("hi")
    assert response.content and sim.request_count == 1
    assert watching.seen == [("answer", "primary", True, True)]  # priced by the after hook, sent upstream
    assert (counting.before, counting.after) == (1, 1)
    assert manager.router.deployments["primary"].requests == 1
    chunks = [c async for c in manager.chat_stream("hi")]
    assert watching.chunks == [c.delta for c in chunks] and chunks[-1].kind == "final"
    assert (counting.before, counting.after) == (2, 2)


async def test_failures_pass_through_the_wrapper_and_fallback_goes_on(sim, make_manager):
    watching, counting = Watching(), Counting()
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0},
                           manager_kwargs={"middleware": [watching, counting]})
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)
    response = await manager.chat("hi")
    assert response.fallback_path == ["primary", "backup"]
    assert watching.seen == [("error", "primary", "ServiceUnavailableError"), ("answer", "backup", True, True)]
    # The failed attempt's after hooks ran exactly once, with the error.
    assert (counting.before, counting.after) == (2, 2) and counting.errors == ["ServiceUnavailableError"]


async def test_a_wrapped_stream_falls_back_before_the_first_chunk(sim, make_manager):
    watching, counting = Watching(), Counting()
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0},
                           manager_kwargs={"middleware": [watching, counting]})
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)
    chunks = [c async for c in manager.chat_stream("hi")]
    assert chunks[-1].metadata["fallback_path"] == ["primary", "backup"]
    assert counting.errors == ["ServiceUnavailableError"] and (counting.before, counting.after) == (2, 2)


async def test_wrappers_nest_first_outermost():
    order = []

    class Named(Middleware):
        def __init__(self, name):
            self.name = name

        async def around_attempt(self, ctx, call_next):
            order.append(f"{self.name} in")
            result = await call_next()
            order.append(f"{self.name} out")
            return result

    chain = MiddlewareChain([Named("a"), Named("b"), Counting()])
    assert len(chain.arounds) == 2 and not chain.stream_arounds

    async def innermost():
        order.append("call")
        return "done"

    assert await chain.wrap(None, innermost) == "done"  # type: ignore[arg-type]
    assert order == ["a in", "b in", "call", "b out", "a out"]


def test_hooks_a_middleware_does_not_override_stay_off_the_path():
    chain = MiddlewareChain([Counting(), Middleware()])
    assert chain.arounds == [] and chain.stream_arounds == []
    assert chain.hooks[1] == (None, None)
