"""A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with exactly the bytes a test scripts.

The simulator speaks each vendor's protocol correctly; faults at the wire need the opposite: a body cut in the
middle of a UTF-8 sequence, an HTML page under a 200, a stream that never ends, a connection reset after half a
body. :class:`RawServer` runs inside the test's event loop and sends what its current :class:`Raw` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Raw", "RawServer"]


@dataclass
class Raw:
    """One scripted answer.

    ``parts`` are sent in order (as chunks of a chunked body when ``chunked``, else as one body with its
    ``Content-Length`` = the sum of ``length`` or of the parts). After the parts: ``end`` is ``"finish"`` (a clean
    end of message), ``"hang"`` (keep the connection open and silent), ``"trickle"`` (send an SSE comment every
    ``trickle_every`` seconds, forever) or ``"reset"`` (TCP RST).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    parts: Sequence[bytes] = ()
    chunked: bool = False
    end: str = "finish"
    length: int | None = None
    trickle_every: float = 0.05


class RawServer:
    """``async with RawServer() as server``: ``server.url`` answers with ``server.answer`` (a :class:`Raw`)."""

    def __init__(self) -> None:
        self.answer = Raw()
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        self.requests += 1
        raw = self.answer
        lines = [f"HTTP/1.1 {raw.status} Scripted".encode()]
        headers = {"content-type": "application/json", **{k.lower(): v for k, v in raw.headers.items()}}
        if raw.chunked:
            headers["transfer-encoding"] = "chunked"
        else:
            size = raw.length if raw.length is not None else sum(len(p) for p in raw.parts)
            headers["content-length"] = str(size)
        lines += [f"{k}: {v}".encode() for k, v in headers.items()]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        for part in raw.parts:
            writer.write(b"%x\r\n%s\r\n" % (len(part), part) if raw.chunked else part)
            await writer.drain()
        if raw.end == "reset":
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if raw.end == "hang":
            await asyncio.Event().wait()
        if raw.end == "trickle":
            while True:
                comment = b": still thinking\n\n"
                writer.write(b"%x\r\n%s\r\n" % (len(comment), comment) if raw.chunked else comment)
                await writer.drain()
                await asyncio.sleep(raw.trickle_every)
        if raw.chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
