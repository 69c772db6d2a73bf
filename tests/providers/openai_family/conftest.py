"""Fixtures for the OpenAI-compatible family tests (mistral, groq, xai, cerebras and the cheap presets).

The OpenAI tests' helpers (recorded request -> call, result summaries) are shared through ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HELPERS = str(Path(__file__).resolve().parents[1] / "openai_compat")
_HERE = str(Path(__file__).resolve().parent)
for folder in (_HELPERS, _HERE):
    if folder not in sys.path:
        sys.path.insert(0, folder)
