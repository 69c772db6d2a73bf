"""HTTP/1.1 server on a raw asyncio protocol with the ``httptools`` parser.

A framework would cost more CPU per request than everything else the simulator does, and the
simulator must never be the bottleneck of a benchmark. Keep-alive and pipelining are supported:
pipelined requests are answered strictly in order, and answers produced while parsing one read
are written with a single ``write`` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from ._http import LAST_CHUNK, Response, chunk

if TYPE_CHECKING:
    from ._app import SimulatorApp

_MAX_QUEUED = 64  # pipelined requests waiting behind a slow answer before reading pauses

_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
    b"connection: close\r\n\r\nBad Request"
)


def _load_httptools() -> Any:
    try:
        import httptools
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('The provider simulator needs httptools: pip install "spoon-llm[testing]"') from exc
    return httptools


class _Pending:
    __slots__ = ("method", "url", "headers", "body", "keep_alive")

    def __init__(
        self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse requests, hand them to the app, write answers in order."""

    def __init__(self, app: SimulatorApp, connections: set[HttpProtocol], httptools: Any) -> None:
        self._app = app
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._parser_error = httptools.HttpParserError
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._out: list[bytes] | None = None  # batched writes while inside data_received
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._paused_reading = False
        self._write_ready: asyncio.Event | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._closing = True
        self._connections.discard(self)
        if self._task is not None:
            self._task.cancel()
        if self._write_ready is not None:
            self._write_ready.set()

    def pause_writing(self) -> None:  # noqa: D102
        if self._write_ready is None:
            self._write_ready = asyncio.Event()
        self._write_ready.clear()

    def resume_writing(self) -> None:  # noqa: D102
        if self._write_ready is not None:
            self._write_ready.set()

    def data_received(self, data: bytes) -> None:  # noqa: D102
        self._out = out = []
        try:
            self._parser.feed_data(data)
        except self._parser_error:
            out.append(_BAD_REQUEST)
            self._closing = True
        finally:
            self._out = None
        transport = self._transport
        if transport is None:
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self._closing and self._task is None:
            transport.close()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:  # noqa: D102
        self._url = b""
        self._headers = []
        self._body = []

    def on_url(self, url: bytes) -> None:  # noqa: D102
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:  # noqa: D102
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:  # noqa: D102
        self._body.append(body)

    def on_message_complete(self) -> None:  # noqa: D102
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        pending = _Pending(self._parser.get_method(), self._url, self._headers, body, self._parser.should_keep_alive())
        if self._task is not None or self._queue:
            self._queue.append(pending)
            if len(self._queue) >= _MAX_QUEUED and self._transport is not None and not self._paused_reading:
                self._transport.pause_reading()
                self._paused_reading = True
            return
        self._process(pending)

    # -- answering ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._out is not None:
            self._out.append(data)
        elif self._transport is not None:
            self._transport.write(data)

    def _process(self, req: _Pending) -> None:
        if self._closing:
            return
        response = self._app.handle(req.method, req.url, req.headers, req.body)
        if response.fault is None:
            # Fast path: whole answer (streams included) framed and written at once.
            self._write(response.encode(req.keep_alive))
            if not req.keep_alive:
                self._closing = True
            return
        self._task = asyncio.get_running_loop().create_task(self._slow(response, req.keep_alive))

    async def _slow(self, response: Response, keep_alive: bool) -> None:
        fault = response.fault
        assert fault is not None
        transport = self._transport
        assert transport is not None
        try:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.reset:
                self._reset(transport)
                return
            if response.events is None:
                if fault.disconnect_after is not None:
                    transport.write(response.head(keep_alive) + response.body[: len(response.body) // 2])
                    self._abort(transport)
                    return
                transport.write(response.encode(keep_alive))
            elif not await self._stream(transport, response, keep_alive):
                return
            if not keep_alive:
                self._closing = True
                transport.close()
        except asyncio.CancelledError:
            self._abort(transport)
            raise
        finally:
            self._task = None
        self._drain_queue()

    async def _stream(self, transport: asyncio.Transport, response: Response, keep_alive: bool) -> bool:
        """Write a stream event by event, applying the fault; False when the connection is gone."""
        fault = response.fault
        assert fault is not None and response.events is not None
        transport.write(response.head(keep_alive))
        for index, event in enumerate(response.events):
            if fault.disconnect_after is not None and index >= fault.disconnect_after:
                self._abort(transport)
                return False
            if fault.truncate_after is not None and index >= fault.truncate_after:
                transport.write(chunk(event[: max(1, len(event) // 2)]))
                break
            if fault.chunk_delay > 0 and index:
                await asyncio.sleep(fault.chunk_delay)
            if self._closing:
                return False
            transport.write(chunk(event))
            if self._write_ready is not None and not self._write_ready.is_set():
                await self._write_ready.wait()
        transport.write(LAST_CHUNK)
        return True

    def _drain_queue(self) -> None:
        while self._queue and self._task is None and not self._closing:
            self._process(self._queue.popleft())
        if self._paused_reading and len(self._queue) < _MAX_QUEUED // 2 and self._transport is not None:
            self._paused_reading = False
            self._transport.resume_reading()
        if self._closing and self._task is None and self._transport is not None:
            self._transport.close()

    def _abort(self, transport: asyncio.Transport) -> None:
        self._closing = True
        transport.abort()

    def _reset(self, transport: asyncio.Transport) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._abort(transport)

    def abort(self) -> None:
        """Drop the connection now (server shutdown)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.abort()


class ServerHandle:
    """A listening server in the current event loop plus its open connections."""

    def __init__(self, server: asyncio.Server, connections: set[HttpProtocol]) -> None:
        self.server = server
        self.connections = connections

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, drop every connection and wait for their tasks to end."""
        self.server.close()
        tasks = []
        for conn in list(self.connections):
            if conn._task is not None:
                tasks.append(conn._task)
            conn.abort()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.server.wait_closed()
        # Let connection_lost callbacks scheduled by abort() run before the loop may close.
        for _ in range(3):
            await asyncio.sleep(0)


async def start_server(app: SimulatorApp, host: str, port: int, *, reuse_port: bool = False) -> ServerHandle:
    """Listen on ``host:port`` (0 = ephemeral) in the running loop."""
    httptools = _load_httptools()
    connections: set[HttpProtocol] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(app, connections, httptools),
        host,
        port,
        reuse_address=True,
        reuse_port=reuse_port or None,
        backlog=1024,
    )
    return ServerHandle(server, connections)
