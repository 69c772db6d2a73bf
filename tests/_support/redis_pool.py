"""Starving a Redis client's connection pool on purpose: what a store does when no connection is free."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

#: The list a held connection waits on; an RPUSH to it hands the connection back.
BLOCK_LIST = "spoon-test-hold-the-connection"


async def hold_the_connection(client: Any, redis_server: str) -> tuple[asyncio.Task[Any], Any]:
    """Take the pool's free connection with a BLPOP, and return once the server shows it waiting.

    Returns the BLPOP's task and an observer client: ``await observer.rpush(BLOCK_LIST, "go")`` gives it back.
    """
    blocker = asyncio.create_task(client.blpop([BLOCK_LIST], timeout=30))
    observer = aioredis.Redis.from_url(redis_server)
    loop = asyncio.get_running_loop()
    ends = loop.time() + 30  # an event to wait for, not a duration: the limit only stops a broken run
    while not any(c.get("cmd") == "blpop" for c in await observer.client_list()):
        assert not blocker.done(), "the BLPOP found no connection"
        assert loop.time() < ends, "the BLPOP never reached the server"
        await asyncio.sleep(0.01)
    return blocker, observer
