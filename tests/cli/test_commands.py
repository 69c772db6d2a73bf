"""``spoon-llm models``, ``health``, ``costs``, ``--version`` and ``python -m spoon_llm``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from spoon_llm.testing import Fault

from .conftest import CLI


def test_version_and_python_dash_m(cli: CLI) -> None:
    result = cli.run("--version")
    assert result.returncode == 0 and result.stdout.startswith("spoon-llm ")
    module = subprocess.run([sys.executable, "-m", "spoon_llm.cli", "--version"], capture_output=True, text=True,
                            env=cli.env, cwd=cli.directory)
    assert module.stdout == result.stdout
    help_text = cli.run("--help").stdout
    for command in ("chat", "batch", "models", "health", "costs", "simulate", "providers", "config"):
        assert command in help_text
    assert "Exit codes" in help_text


def test_models_lists_aliases_configured_and_listed_models_with_prices(cli: CLI, sim) -> None:
    result = cli.run("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_kind = {(row["kind"], row["name"]): row for row in rows}
    assert by_kind[("alias", "fast")]["serves"] == ["openai/gpt-4.1-mini"]
    configured = by_kind[("configured", "gpt-4.1-mini")]
    assert configured["provider"] == "openai" and configured["price"]["input_per_1m"] > 0
    listed = [row for row in rows if row["kind"] == "listed"]
    # from the simulator's /v1/models of each vendor
    assert {row["provider"] for row in listed} == {"openai", "anthropic"}
    assert ("listed", "claude-opus-4-6") in by_kind and ("listed", "gpt-4o") in by_kind
    assert sim.requests_for("anthropic", "models") and sim.requests_for("openai", "models")
    assert not sim.requests_for(endpoint="chat")
    table = cli.run("models", "anthropic")
    assert table.returncode == 0, table.stderr
    assert "claude-sonnet-4-5" in table.stdout and "gpt-4.1-mini" not in table.stdout and "$3.00" in table.stdout


def test_models_rejects_an_unknown_provider_in_one_line(cli: CLI) -> None:
    result = cli.run("models", "nope")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'nope' is not configured" in result.stderr


def test_health_is_up_spends_no_tokens_and_exits_1_when_a_deployment_is_down(cli: CLI, sim) -> None:
    result = cli.run("health")
    assert result.returncode == 0, result.stderr
    assert "openai" in result.stdout and "anthropic" in result.stdout and "down" not in result.stdout
    sim.fault("anthropic", Fault.unavailable(), endpoint="models", times=None)
    down = cli.run("health", "--json")
    assert down.returncode == 1
    report = json.loads(down.stdout)
    states = {row["deployment"]: row["up"] for row in report["deployments"]}
    assert states == {"openai": True, "anthropic": False} and report["healthy"] is False
    assert not sim.requests_for(endpoint="chat")


def test_costs_read_the_persisted_ledger_by_provider_tag_and_day(cli: CLI, sim) -> None:
    lines = [{"id": "a", "prompt": "one", "model": "openai", "tags": {"team": "research"}},
             {"id": "b", "prompt": "two", "model": "anthropic", "tags": {"team": "ops"}},
             {"id": "c", "prompt": "three", "model": "anthropic"}]
    (cli.directory / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli.run("batch", "in.jsonl", "-o", "out.jsonl").returncode == 0
    table = cli.run("costs")
    assert table.returncode == 0, table.stderr
    assert "openai" in table.stdout and "anthropic" in table.stdout and "total" in table.stdout
    data = json.loads(cli.run("costs", "--json", "--since", "1h").stdout)
    rows = {row["group"]: row for row in data["rows"]}
    assert rows["openai"]["requests"] == 1 and rows["anthropic"]["requests"] == 2
    assert data["total"]["requests"] == 3 and data["total"]["cost"] > rows["openai"]["cost"] > 0
    assert data["rows"][0]["group"] == "anthropic"  # dearest first
    tags = {row["group"]: row["requests"] for row in json.loads(cli.run("costs", "--by", "tag", "--json").stdout)[
        "rows"]}
    assert tags == {"team=research": 1, "team=ops": 1, "(untagged)": 1}
    days = list(csv.DictReader(io.StringIO(cli.run("costs", "--by", "day", "--csv").stdout)))
    assert len(days) == 1 and days[0]["requests"] == "3" and float(days[0]["cost"]) > 0
    future = cli.run("costs", "--since", "2999-01-01")
    assert future.returncode == 0 and "no usage recorded in that period" in future.stdout


def test_costs_reject_a_bad_since_and_an_in_memory_ledger(cli: CLI) -> None:
    nothing = cli.run("costs")
    assert nothing.returncode == 0 and "no usage recorded yet" in nothing.stdout
    assert not (cli.directory / "usage.db").exists()  # reading never creates the ledger
    bad = cli.run("costs", "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since 7d" in bad.stderr
    with (cli.directory / "spoon_llm.toml").open("a") as config:
        config.write('\n[state]\nledger = "memory"\n')
    memory = cli.run("costs")
    assert memory.returncode == 1 and "in memory" in memory.stderr and "fix:" in memory.stderr


def test_no_color_and_wide_tables_wrap_instead_of_truncating(cli: CLI) -> None:
    long_alias = "an-alias-with-a-very-long-name-that-does-not-fit-anywhere-" * 2
    with (cli.directory / "spoon_llm.toml").open("a") as config:
        config.write(f'"{long_alias}" = "anthropic/claude-sonnet-4-5"\n')
    env = {**cli.env, "COLUMNS": "60"}
    result = subprocess.run(cli.command("models", "--offline"), capture_output=True, text=True, env=env,
                            cwd=cli.directory)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert "…" not in result.stdout
    assert long_alias.replace("-", "") in "".join(
        line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") >= 4).replace("-", "")
