"""Every python block of README.md runs, in order, with warnings as errors (``ResourceWarning`` included, so an
``Unclosed client session`` fails it), against the provider simulator over real sockets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spoon_llm.testing import ProviderSimulator

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_readme_runner.py")
KEY = "sk-readme-snippets-0123456789abcdef"


def test_every_readme_python_block_runs_with_warnings_as_errors(tmp_path: Path) -> None:
    blocks = (ROOT / "README.md").read_text().count("```python\n")
    assert blocks >= 10
    with ProviderSimulator() as sim:
        env = {k: v for k, v in os.environ.items()
               if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("SPOON_LLM_")}
        # The blocks' "config from env vars and spoon_llm.toml": a file in the working directory (the environment
        # would also override the block that builds its own configuration from a dict).
        (tmp_path / "spoon_llm.toml").write_text(
            f'[providers.openai]\napi_key = "{KEY}"\nbase_url = "{sim.openai_base_url}"\nmodel = "gpt-4.1-mini"\n'
            f'[providers.anthropic]\napi_key = "{KEY}"\nbase_url = "{sim.anthropic_base_url}"\n')
        env.update({
            "SPOON_LLM_STATE_PATH": str(tmp_path / "state" / "usage.db"),
            "PYTHONWARNINGS": "error", "PYTHONDEVMODE": "", "PYTHONASYNCIODEBUG": "",
        })
        result = subprocess.run([sys.executable, "-W", "error", str(RUNNER), str(ROOT / "README.md")],
                                capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        requests = sim.request_count
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{blocks} blocks ok" in result.stdout
    # Warnings raised in __del__ (an unclosed session) and loop errors cannot fail the process: they print.
    assert "Exception ignored" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert requests > 0  # the blocks really talked to the simulator
    assert KEY not in result.stdout + result.stderr


def test_the_readmes_pytest_example_passes_under_pytest_in_strict_asyncio_mode(tmp_path: Path) -> None:
    # A user's project has no asyncio_mode = "auto": the example must say what it needs itself.
    readme = (ROOT / "README.md").read_text()
    block = next(b.split("```", 1)[0] for b in readme.split("```python\n")[1:] if "async def test_" in b)
    (tmp_path / "test_example.py").write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                             "asyncio_mode=strict", "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error",
                             "test_example.py"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
