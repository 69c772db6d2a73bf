"""Replay of recorded interactions from the conformance corpus (``../shared/conformance``).

:func:`load_conformance` finds and filters the corpus; ``ProviderSimulator.replay`` answers the
next request to the same vendor and endpoint kind exactly as a recorded response was sent.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._http import Response
from ._routes import resolve

ENV_VAR = "SPOON_LLM_CONFORMANCE_DIR"


def sse_bytes(items: Iterable[Mapping[str, Any]]) -> bytes:
    """Turn a recorded ``sse`` list back into the bytes of the stream (comments included)."""
    return b"".join(sse_frames(items))


def sse_frames(items: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Turn a recorded ``sse`` list into one framed SSE event per item."""
    out: list[bytes] = []
    for item in items:
        if "comment" in item:
            out.append(f": {item['comment']}\n\n".encode())
            continue
        text = f"event: {item['event']}\n" if "event" in item else ""
        if "id" in item:
            text += f"id: {item['id']}\n"
        if "retry" in item:
            text += f"retry: {item['retry']}\n"
        text += "".join(f"data: {line}\n" for line in str(item.get("data", "")).split("\n"))
        out.append((text + "\n").encode())
    return out


def find_conformance_dir() -> Path | None:
    """Locate the corpus: ``$SPOON_LLM_CONFORMANCE_DIR``, else ``../shared/conformance`` next to the repo.

    The repository root is taken from this file's location (source checkouts and editable
    installs) and from the current directory; ``None`` when no folder with ``index.json`` exists.
    """
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    repo_root = Path(__file__).resolve().parents[2]
    candidates.append(repo_root.parent / "shared" / "conformance")
    cwd = Path.cwd()
    candidates.extend(p.parent / "shared" / "conformance" for p in (cwd, *cwd.parents))
    for candidate in candidates:
        if (candidate / "index.json").is_file():
            return candidate
    return None


@dataclass(frozen=True)
class ConformanceCase:
    """One recorded interaction: request, response and the ``expected`` values derived from it."""

    file: Path
    provider: str
    kind: str
    tags: tuple[str, ...]
    request: dict[str, Any]
    response: dict[str, Any]
    expected: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Short identifier (file name without ``.json``), handy as a pytest id."""
        return self.file.stem

    @property
    def status(self) -> int:
        """HTTP status of the recorded response."""
        return int(self.response.get("status", 200))

    @property
    def is_stream(self) -> bool:
        """True when the recorded response is an SSE stream (or a Bedrock event stream)."""
        return "sse" in self.response or "eventstream" in self.response

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], file: Path | None = None) -> ConformanceCase:
        """Build a case from a parsed corpus file."""
        return cls(
            file=file or Path(str(data.get("provider", "case")) + ".json"),
            provider=str(data["provider"]),
            kind=str(data.get("kind", "")),
            tags=tuple(data.get("tags", ())),
            request=dict(data["request"]),
            response=dict(data["response"]),
            expected=dict(data.get("expected") or {}),
            source=dict(data.get("source") or {}),
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ConformanceCase:
        """Load a case from a corpus JSON file."""
        file = Path(path)
        return cls.from_dict(json.loads(file.read_text(encoding="utf-8")), file)


def load_conformance(
    provider: str | None = None,
    kind: str | None = None,
    tags: Iterable[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> list[ConformanceCase]:
    """Load the recorded cases matching ``provider``, ``kind`` and all of ``tags``.

    Returns ``[]`` when the corpus is not available (see :func:`find_conformance_dir`).
    """
    base = Path(root) if root is not None else find_conformance_dir()
    if base is None or not (base / "index.json").is_file():
        return []
    wanted = set(tags or ())
    cases = []
    for entry in json.loads((base / "index.json").read_text(encoding="utf-8")):
        if provider is not None and entry.get("provider") != provider:
            continue
        if kind is not None and entry.get("kind") != kind:
            continue
        if wanted and not wanted.issubset(entry.get("tags", ())):
            continue
        cases.append(ConformanceCase.from_file(base / entry["file"]))
    return cases


def _endpoint_of(request: Mapping[str, Any]) -> str | None:
    path = str(request.get("path", "")).partition("?")[0]
    hint = "gemini" if "key=" in str(request.get("path", "")) else None
    route = resolve(path, hint)
    return route.endpoint if route is not None else None


class _Recorded:
    __slots__ = ("vendor", "endpoint", "status", "headers", "body", "events")

    def __init__(self, case: ConformanceCase) -> None:
        response = case.response
        self.vendor = case.provider
        endpoint = _endpoint_of(case.request)
        # A recorded error from a non-inference path (e.g. OpenAI tracing) answers any endpoint.
        self.endpoint = (
            endpoint if endpoint is not None and not case.request.get("path", "").startswith("/v1/traces") else None
        )
        self.status = int(response.get("status", 200))
        content_type = str(response.get("content_type") or response.get("headers", {}).get("content-type", ""))
        self.headers = [("content-type", content_type)] if content_type else []
        retry_after = (response.get("headers") or {}).get("retry-after")
        if retry_after is not None:
            self.headers.append(("retry-after", str(retry_after)))
        error_type = (response.get("headers") or {}).get("x-amzn-errortype")  # Bedrock names its errors here
        if error_type is not None:
            self.headers.append(("x-amzn-errortype", str(error_type)))
        self.events: list[bytes] | None = None
        self.body = b""
        if "sse" in response:
            self.events = sse_frames(response["sse"])
        elif "eventstream" in response:
            from ._bedrock import eventstream_frames  # Bedrock's binary event streams

            self.events = eventstream_frames(response["eventstream"])
        elif "body" in response:
            self.body = json.dumps(response["body"]).encode()

    def response(self) -> Response:
        return Response(
            self.status, list(self.headers), self.body, list(self.events) if self.events is not None else None
        )


def as_case(record: ConformanceCase | Mapping[str, Any] | str | os.PathLike[str]) -> ConformanceCase:
    """Accept a case, a parsed corpus dict or a path to a corpus file."""
    if isinstance(record, ConformanceCase):
        return record
    if isinstance(record, Mapping):
        return ConformanceCase.from_dict(record)
    return ConformanceCase.from_file(record)


class ReplayBook:
    """Queued recorded answers, each used once, first in first out per vendor (thread-safe)."""

    def __init__(self) -> None:
        self._items: list[_Recorded] = []
        self._lock = threading.Lock()

    def add(self, case: ConformanceCase) -> None:
        """Queue a recorded response."""
        item = _Recorded(case)
        with self._lock:
            self._items.append(item)

    def take(self, vendor: str, endpoint: str) -> Response | None:
        """Return the first queued response for ``vendor`` and ``endpoint``, removing it."""
        if not self._items:
            return None
        with self._lock:
            for i, item in enumerate(self._items):
                if item.vendor == vendor and (item.endpoint is None or item.endpoint == endpoint):
                    del self._items[i]
                    return item.response()
        return None

    def clear(self) -> None:
        """Forget every queued response."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
