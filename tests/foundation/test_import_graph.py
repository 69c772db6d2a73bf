"""The import graph points one way: providers sit below the request core and never reach up into it.

Read from the source (every ``import`` statement, including those under ``TYPE_CHECKING`` and inside functions),
so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "spoon_llm"

# layer -> modules it must not import (prefixes of dotted names)
# The manager is the facade over the request core (spoon_llm.request) and run-time control (spoon_llm.control).
_MANAGER = ("spoon_llm.manager", "spoon_llm.request", "spoon_llm.control")
FORBIDDEN = {
    "spoon_llm.providers": (*_MANAGER, "spoon_llm.middleware", "spoon_llm.server", "spoon_llm.cli",
                            "spoon_llm.routing"),
    "spoon_llm.transport": (*_MANAGER, "spoon_llm.middleware", "spoon_llm.providers", "spoon_llm.server"),
    "spoon_llm.routing": (*_MANAGER, "spoon_llm.middleware", "spoon_llm.server", "spoon_llm.cli"),
    "spoon_llm.call_settings": (*_MANAGER, "spoon_llm.middleware", "spoon_llm.providers"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from x import y`` also yields ``x.y``: y may be one)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def _files(layer: str) -> list[Path]:
    root = PACKAGE.parent.joinpath(*layer.split("."))
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_ones(layer: str) -> None:
    files = _files(layer)
    assert files, layer
    upward = sorted(
        f"{_module_name(path)} imports {name}"
        for path in files for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    )
    assert upward == []


def test_the_reader_resolves_relative_imports() -> None:
    names = _imports(PACKAGE / "providers" / "anthropic" / "_convert.py")
    assert "spoon_llm.call_settings" in names and "spoon_llm.providers._common" in names
