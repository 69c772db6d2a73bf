"""The dashboard's static files at /ui: content types, caching, security headers, path traversal, the wheel.

HTTP behaviour is checked on the live ``spoon-llm serve`` process; traversal attempts go over a raw socket so
no client normalises the path first.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx2
import pytest

from spoon_llm.server._static import CONTENT_SECURITY_POLICY, StaticFiles

from .conftest import Gateway

UI = Path(__file__).resolve().parents[2] / "spoon_llm" / "server" / "ui"
ROOT = Path(__file__).resolve().parents[2]


def raw_get(gateway: Gateway, target: str) -> tuple[int, bytes]:
    """GET with the request target sent exactly as given; the status and the body."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_ui_redirects_to_the_folder_and_serves_the_page(gateway: Gateway) -> None:
    moved = httpx2.get(gateway.url + "/ui?x=1", follow_redirects=False, timeout=10)
    assert moved.status_code == 308
    assert moved.headers["location"] == "/ui/?x=1"
    page = httpx2.get(gateway.url + "/ui/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', page.headers["etag"])
    assert '<script type="module" src="js/main.js"></script>' in page.text
    assert page.content == (UI / "index.html").read_bytes()


@pytest.mark.parametrize(("path", "content_type"), [
    ("/ui/app.css", "text/css; charset=utf-8"),
    ("/ui/js/main.js", "text/javascript; charset=utf-8"),
    ("/ui/js/views/overview.js", "text/javascript; charset=utf-8"),
    ("/ui/icon.svg", "image/svg+xml"),
])
def test_content_types(gateway: Gateway, path: str, content_type: str) -> None:
    answer = httpx2.get(gateway.url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert int(answer.headers["content-length"]) == len(answer.content) > 0


def test_every_module_the_page_imports_is_served(gateway: Gateway) -> None:
    """Follow index.html's script and the modules' relative imports: each resolves to a served file."""
    pending = ["js/main.js"]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        answer = httpx2.get(f"{gateway.url}/ui/{name}", timeout=10)
        assert answer.status_code == 200, name
        folder = name.rpartition("/")[0]
        for spec in re.findall(r'from "(\.{1,2}/[^"]+)"', answer.text):
            parts = (folder.split("/") if folder else []) + spec.split("/")
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            pending.append("/".join(resolved))
    assert {"js/api.js", "js/dom.js", "js/charts.js", "js/views/keys.js", "js/views/audit.js"} <= seen


def test_revalidation_and_head(gateway: Gateway) -> None:
    first = httpx2.get(gateway.url + "/ui/app.css", timeout=10)
    etag = first.headers["etag"]
    again = httpx2.get(gateway.url + "/ui/app.css", headers={"if-none-match": etag}, timeout=10)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = httpx2.get(gateway.url + "/ui/app.css", headers={"if-none-match": f'"other", W/{etag}'}, timeout=10)
    assert weak.status_code == 304
    stale = httpx2.get(gateway.url + "/ui/app.css", headers={"if-none-match": '"other"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == first.content
    head = httpx2.head(gateway.url + "/ui/app.css", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(first.content))


def test_other_methods_are_refused(gateway: Gateway) -> None:
    answer = httpx2.post(gateway.url + "/ui/index.html", content=b"x", timeout=10)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("target", [
    "/ui/../pyproject.toml",
    "/ui/../../spoon_llm/server/app.py",
    "/ui/%2e%2e/app.py",
    "/ui/..%2fapp.py",
    "/ui/js/../../_static.py",
    "/ui//etc/passwd",
    "/ui/%2fetc%2fpasswd",
    "/ui/js/",
    "/ui/js",
    "/ui/.hidden",
    "/ui/index.html%00.js",
    "/ui/..\\app.py",
])
def test_path_traversal_finds_nothing(gateway: Gateway, target: str) -> None:
    status, body = raw_get(gateway, target)
    assert status in (400, 404), (target, status)
    assert b"import" not in body and b"root:" not in body


def test_a_path_that_only_starts_like_ui_is_not_the_dashboard(gateway: Gateway) -> None:
    answer = httpx2.get(gateway.url + "/uix", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"


class _Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_only_known_kinds_of_file_outside_hidden_folders_are_served(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "dash_pkg"
    (package / "ui" / "js").mkdir(parents=True)
    (package / "ui" / "_private").mkdir()
    (package / "__init__.py").write_text("")
    (package / "ui" / "index.html").write_text("<p>hi</p>")
    (package / "ui" / "js" / "a.js").write_text("export {};")
    (package / "ui" / "secret.py").write_text("KEY = 1")
    (package / "ui" / ".env").write_text("KEY=1")
    (package / "ui" / "_private" / "b.js").write_text("x")
    monkeypatch.syspath_prepend(str(tmp_path))
    files = StaticFiles(package="dash_pkg", folder="ui", mount="/d")
    try:
        assert sorted(files.files()) == ["index.html", "js/a.js"]
        for path, status in (("/d/", 200), ("/d/js/a.js", 200), ("/d/secret.py", 404), ("/d/.env", 404),
                             ("/d/_private/b.js", 404), ("/d", 308)):
            sent = _Sent()
            await files({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""},
                        _receive, sent)
            assert sent.status == status, path
    finally:
        sys.modules.pop("dash_pkg", None)


def test_the_page_builds_no_markup_from_strings_and_loads_nothing_from_elsewhere() -> None:
    """Data reaches the page as text nodes only, and nothing comes from a CDN."""
    sources = {p.relative_to(UI).as_posix(): p.read_text() for p in UI.rglob("*") if p.is_file()}
    assert {"index.html", "app.css", "js/main.js", "js/api.js", "js/dom.js", "js/charts.js"} <= set(sources)
    for name, text in sources.items():
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                       "setAttribute(\"style\"", "localStorage"):
            assert banned not in text, (name, banned)
        assert not re.search(r'(src|href)="(https?:)?//', text), name
        assert not re.search(r'url\(\s*["\']?(https?:)?//', text), name
        assert not re.search(r'from\s+"(https?:)?//', text), name


def test_the_wheel_ships_the_dashboard(tmp_path: Path) -> None:
    """Build the wheel (offline, with the installed hatchling) and find every dashboard file in it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("spoon_llm-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {"spoon_llm/server/" + p.relative_to(UI.parent).as_posix() for p in UI.rglob("*") if p.is_file()}
    assert expected and expected <= names
    assert "spoon_llm/server/_static.py" in names
