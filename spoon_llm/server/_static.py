"""The dashboard's static files at ``/ui``: read once from the package, answered from memory.

Only files found under ``spoon_llm/server/ui`` when the table is built can be served: a request path is looked up
in that table, never joined onto a filesystem path, so ``..``, encoded slashes or absolute paths cannot reach
anything else. File names carry no content hash (there is no build step), so every answer says ``no-cache`` with a
strong ETag: the browser revalidates and gets a bodiless 304 while the file is unchanged, and never runs a stale
module after an upgrade. Each answer carries a Content-Security-Policy that allows the page's own scripts, styles,
images and API calls and nothing else (no inline script or style, no other origin, no framing).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from ._context import Receive, Scope, Send

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = ["CONTENT_SECURITY_POLICY", "StaticFiles"]

#: What the dashboard may load: its own files and API over the same origin, images also as data: URLs.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")

#: Content types by file suffix; files of other kinds in the folder are not served.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: bytes
    etag: bytes


def _walk(folder: Traversable, prefix: str = "") -> dict[str, _File]:
    files: dict[str, _File] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            if not entry.name.startswith(("_", ".")):
                files.update(_walk(entry, name + "/"))
            continue
        suffix = "." + entry.name.rpartition(".")[2] if "." in entry.name else ""
        kind = _TYPES.get(suffix)
        if kind is None or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        files[name] = _File(body, kind.encode(), b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"')
    return files


class StaticFiles:
    """An ASGI handler for ``GET``/``HEAD`` under ``mount`` over one package folder.

    ``{mount}`` redirects to ``{mount}/``, which serves ``index.html``. The folder is read on the first request
    (so a gateway that never serves the dashboard never reads it) and held in memory: a few dozen kilobytes.
    """

    def __init__(self, package: str = "spoon_llm.server", folder: str = "ui", mount: str = "/ui") -> None:
        self.package = package
        self.folder = folder
        self.mount = mount
        self._files: dict[str, _File] | None = None

    def files(self) -> dict[str, _File]:
        """The served files by path relative to the folder (read once)."""
        if self._files is None:
            self._files = _walk(resources.files(self.package).joinpath(self.folder))
        return self._files

    def handles(self, path: str) -> bool:
        """True for the paths this handler answers (``{mount}`` and everything under ``{mount}/``)."""
        return path == self.mount or path.startswith(self.mount + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request for a path under the mount."""
        method = scope["method"]
        path = scope["path"]
        if method not in ("GET", "HEAD"):
            await _send(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")], method)
            return
        if path == self.mount:
            query = scope.get("query_string", b"")
            location = (self.mount + "/").encode() + (b"?" + query if query else b"")
            await _send(send, 308, b"", [(b"location", location)], method)
            return
        name = path[len(self.mount) + 1:] or "index.html"
        found = self.files().get(name)
        if found is None:
            await _send(send, 404, b"not found\n", [], method)
            return
        validators = [(b"etag", found.etag), (b"cache-control", b"no-cache")]
        if _matches(scope, found.etag):
            await _send(send, 304, b"", validators, method)
            return
        await _send(send, 200, found.body, validators, method, found.content_type)


def _matches(scope: Scope, etag: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = [t.strip().removeprefix(b"W/") for t in value.split(b",")]
            return etag in tags or b"*" in tags
    return False


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], method: str,
                content_type: bytes = b"text/plain; charset=utf-8") -> None:
    out = [*_SECURITY_HEADERS, *headers]
    if status != 304:
        out += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" or status == 304 else body})
