"""Running many requests through the manager with bounded concurrency, in input order or as they finish."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ValidationError

if TYPE_CHECKING:
    from .manager import LLMManager
    from .types import LLMResponse, MessageInput

__all__ = ["iter_batch", "run_batch"]

Request = Sequence["MessageInput"] | Mapping[str, Any] | str


def _split(request: Request, common: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    if isinstance(request, Mapping) and "messages" in request:
        kwargs = {**common, **{k: v for k, v in request.items() if k != "messages"}}
        return request["messages"], kwargs
    if isinstance(request, Mapping) and "role" not in request:
        raise ValidationError("a batch request given as a dict needs a 'messages' key")
    return request, dict(common)


async def run_batch(
    manager: LLMManager,
    requests: Iterable[Request],
    *,
    concurrency: int,
    return_exceptions: bool,
    progress: Callable[[int, int | None], Any] | None,
    common: Mapping[str, Any],
) -> list[Any]:
    """Results in input order; ``concurrency`` workers pull from one iterator, so no more tasks than that exist."""
    if concurrency < 1:
        raise ValidationError("concurrency must be at least 1")
    total = len(requests) if isinstance(requests, Sequence) else None
    results: list[Any] = [None] * total if total is not None else []
    source: Iterator[tuple[int, Request]] = enumerate(requests)
    done = 0

    async def worker() -> None:
        nonlocal done
        for index, request in source:  # the shared iterator hands each request to exactly one worker
            if total is None and index >= len(results):
                results.extend([None] * (index + 1 - len(results)))
            messages, kwargs = _split(request, common)
            try:
                results[index] = await manager.chat(messages, **kwargs)
            except Exception as exc:
                if not return_exceptions:
                    raise
                results[index] = exc
            done += 1
            if progress is not None:
                outcome = progress(done, total)
                if inspect.isawaitable(outcome):
                    await outcome

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return results


async def iter_batch(
    manager: LLMManager,
    requests: Iterable[Request],
    *,
    concurrency: int,
    common: Mapping[str, Any],
) -> AsyncIterator[tuple[int, LLMResponse | BaseException]]:
    """``(index, result or exception)`` as requests finish; at most ``concurrency`` results wait unread."""
    if concurrency < 1:
        raise ValidationError("concurrency must be at least 1")
    queue: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue(maxsize=concurrency)
    source = enumerate(requests)

    async def worker() -> None:
        try:
            for index, request in source:
                messages, kwargs = _split(request, common)
                try:
                    result: Any = await manager.chat(messages, **kwargs)
                except Exception as exc:
                    result = exc
                await queue.put((index, result))
        finally:
            await queue.put(None)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    finished = 0
    try:
        while finished < concurrency:
            item = await queue.get()
            if item is None:
                finished += 1
                continue
            yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
