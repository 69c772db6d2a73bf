"""Lazy package exports (PEP 562): a name is imported from its module on first access, then cached.

Used by every package whose public names would otherwise pull heavy modules (pydantic, SDKs, extras) into
``import spoon_llm``::

    _LAZY = {"LLMManager": ".manager"}
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any], locations: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` for names found in ``locations``.

    ``locations`` maps a public name to the (relative) module defining it; the loaded value is stored in
    ``namespace`` (the package's ``globals()``), so later lookups never reach ``__getattr__`` again.
    """

    def __getattr__(name: str) -> Any:
        module = locations.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
