"""A real redis-server on a free loopback port: the one way every test folder starts one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisServer", "free_port", "redis_binary"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str | None:
    """The redis-server executable, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


class RedisServer:
    """One redis-server process (no persistence) in ``workdir``, which its owner starts and may stop."""

    def __init__(self, workdir: Path, *, max_clients: int | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.max_clients = max_clients
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING (at most 10 s)."""
        binary = redis_binary()
        assert binary is not None, "redis-server is not installed (Debian: apt-get install -y redis-server)"
        extra = ["--maxclients", str(self.max_clients)] if self.max_clients else []
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (at once: tests stop it to see an outage); a no-op when it is not running."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(timeout=10)
