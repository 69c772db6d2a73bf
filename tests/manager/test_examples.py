"""The examples in examples/ run as documented."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["quickstart.py", "custom_provider.py"])
def test_example_runs(name):
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    if name == "quickstart.py":
        assert "tool call: add({'a': 2, 'b': 3})" in result.stdout
    else:
        assert "tenant header sent: research" in result.stdout
