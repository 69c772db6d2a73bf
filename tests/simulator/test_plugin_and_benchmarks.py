"""The pytest plugin (fixtures, import cost) and smoke runs of the benchmark scripts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator

REPO = Path(__file__).resolve().parents[2]


def test_fixture_gives_running_simulator(provider_simulator: ProviderSimulator) -> None:
    assert httpx2.get(provider_simulator.base_url + "/health").status_code == 200


def test_plugin_and_package_import_nothing_heavy() -> None:
    code = textwrap.dedent(
        """
        import sys
        import spoon_llm.testing.pytest_plugin
        import spoon_llm.testing as t
        t.Reply, t.Fault, t.ProviderSimulator  # resolving names must stay light too
        heavy = ("openai", "anthropic", "google.genai", "httptools", "uvicorn", "aiohttp")
        loaded = sorted(m for m in sys.modules if m.startswith(heavy))
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_plugin_fixtures_in_a_fresh_pytest_run(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import httpx2
            from spoon_llm.testing import Reply

            def test_uses_simulator(provider_simulator):
                provider_simulator.script("openai", Reply(text="from a user test"))
                body = {"model": "m", "messages": []}
                r = httpx2.post(provider_simulator.openai_base_url + "/chat/completions", json=body)
                assert r.json()["choices"][0]["message"]["content"] == "from a user test"

            def test_corpus(conformance_dir):
                assert (conformance_dir / "index.json").is_file()
            """
        )
    )
    ini = "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    (tmp_path / "pytest.ini").write_text(ini)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    # Without the entry point (package not installed) the plugin module is loaded explicitly.
    from importlib.metadata import entry_points

    if not any(e.value == "spoon_llm.testing.pytest_plugin" for e in entry_points(group="pytest11")):
        args[3:3] = ["-p", "spoon_llm.testing.pytest_plugin"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout or "1 passed, 1 skipped" in result.stdout


@pytest.fixture
def benchmarks_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))


@pytest.mark.usefixtures("benchmarks_on_path")
def test_harness_smoke() -> None:
    import harness

    results = harness.run_benchmark(
        {"raw_httpx2": harness.CLIENTS["raw_httpx2"], "again": harness.CLIENTS["raw_httpx2"]},
        n=30,
        concurrency=[1, 4],
        warmup=5,
        report=None,
    )
    assert [(r.client, r.concurrency) for r in results] == [
        ("raw_httpx2", 1),
        ("again", 1),
        ("raw_httpx2", 4),
        ("again", 4),
    ]
    for r in results:
        assert r.errors == 0 and r.rps > 0 and r.cpu_us_per_req > 0 and r.p99_ms >= r.p50_ms > 0
        assert r.peak_rss_mb > 0
    assert results[1].ratios["cpu_per_req"] > 0
    table = harness.format_table(results, "raw_httpx2")
    assert "cpu-us/req" in table and "again" in table


@pytest.mark.usefixtures("benchmarks_on_path")
def test_simulator_load_smoke() -> None:
    import simulator_load

    result = simulator_load.run(connections=4, seconds=0.3, warmup=0)
    assert result["requests"] > 10
    assert result["rps"] > 0
