"""Which application a budget and a usage ledger belong to.

Budgets and the usage ledger live in a store that other applications on the machine may share (the default SQLite
file, a Redis server), so their keys carry a *namespace*. It is, in order: ``namespace`` in the configuration (or
``SPOON_LLM_NAMESPACE``), else derived from the configuration file's location (``<folder>-<hash of the path>``),
else from the working directory. Two applications therefore never share one bucket by accident, and one
application keeps its spend across restarts as long as it reads the same file (or starts in the same folder).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.manager import ConfigurationManager
    from ..config.models import SpoonConfig

__all__ = ["NAMESPACE_ENV", "ledger_table", "resolve_namespace"]

NAMESPACE_ENV = "SPOON_LLM_NAMESPACE"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _derived(where: Path) -> str:
    digest = hashlib.sha256(str(where).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    label = _UNSAFE.sub("_", where.parent.name if where.is_file() else where.name) or "root"
    return f"{label[:40]}-{digest}"


def resolve_namespace(config: ConfigurationManager | SpoonConfig) -> str:
    """The namespace of ``config``'s budgets and ledger (see the module docstring)."""
    from ..config.manager import ConfigurationManager

    settings = config.config if isinstance(config, ConfigurationManager) else config
    explicit = getattr(settings, "namespace", None)
    if explicit:
        return str(explicit)
    if isinstance(config, ConfigurationManager):
        from_env = config._environment().get(NAMESPACE_ENV)
        if from_env:
            return from_env
        source = config.source_name
        if source is not None and source not in ("config dict", "explicit settings"):
            path = Path(source).expanduser()
            if path.is_file():
                return _derived(path.resolve())
    return _derived(Path(os.getcwd()).resolve())


def ledger_table(namespace: str | None) -> str:
    """The usage-ledger table of ``namespace`` (``usage`` without one)."""
    from .tracker import LEDGER_TABLE

    return f"{LEDGER_TABLE}:{namespace}" if namespace else LEDGER_TABLE
