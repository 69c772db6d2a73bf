"""The command line prints user text as text: square brackets in file names, keys and messages survive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import KEY


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["COLUMNS"] = "300"
    return subprocess.run([sys.executable, "-m", "spoon_llm.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)


def test_brackets_in_a_file_name_and_values_are_printed_as_written(tmp_path: Path) -> None:
    name = "[bold]app[red].toml"
    (tmp_path / name).write_text(f'[providers.openai]\napi_key = "{KEY}"\nmodel = "[red]gpt[/red]"\n')
    shown = run(tmp_path, "config", "show", "-c", name)
    assert shown.returncode == 0, shown.stderr
    assert f"configuration ({name})" in shown.stdout      # the table title
    assert "[red]gpt[/red]" in shown.stdout                # a value
    valid = run(tmp_path, "config", "validate", name)
    assert valid.returncode == 0, valid.stderr
    assert f"ok: {name} is valid" in " ".join(valid.stdout.split())


def test_an_error_naming_a_section_keeps_its_brackets(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('fallback_chain = ["openai", "backup"]\n'
                                       f'[providers.openai]\napi_key = "{KEY}"\n')
    result = run(tmp_path, "config", "validate", "app.toml")
    assert result.returncode == 1
    assert "(fix: add [providers.backup] or remove it from the chain)" in " ".join(result.stderr.split())
