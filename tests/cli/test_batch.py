"""``spoon-llm batch``: both input forms, the OpenAI Batch output shape, injected faults, interruption and resume."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from spoon_llm.testing import Fault

from .conftest import CLI


def write_input(path: Path, count: int) -> list[str]:
    ids = []
    with path.open("w") as out:
        for i in range(count):
            if i % 2:
                ids.append(f"req-{i}")
                out.write(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                                      "body": {"model": "gpt-4.1-mini", "max_tokens": 40,
                                               "messages": [{"role": "user", "content": f"question {i}"}]}}) + "\n")
            else:
                ids.append(f"req-{i}")
                out.write(json.dumps({"id": f"req-{i}", "prompt": f"question {i}"}) + "\n")
    return ids


def read_output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_both_input_forms_give_openai_batch_output_lines(cli: CLI, sim) -> None:
    source = cli.directory / "in.jsonl"
    write_input(source, 4)
    with source.open("a") as out:
        out.write("\n")  # blank lines are ignored
        out.write(json.dumps({"custom_id": "bad", "url": "/v1/embeddings", "body": {}}) + "\n")
        out.write("{not json\n")
        out.write(json.dumps({"id": "tagged", "prompt": "x", "tags": "team"}) + "\n")
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "--tag", "job=test")
    assert result.returncode == 1, result.stderr  # three lines could not run
    lines = read_output(cli.directory / "out.jsonl")
    by_id = {line["custom_id"]: line for line in lines}
    assert sorted(by_id) == ["bad", "line-7", "req-0", "req-1", "req-2", "req-3", "tagged"]
    answer = by_id["req-1"]
    assert answer["id"].startswith("batch_req_") and answer["error"] is None
    assert answer["response"]["status_code"] == 200
    body = answer["response"]["body"]
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Simulated reply to: question 1"}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0
    assert answer["spoon_llm"]["provider"] == "openai" and answer["spoon_llm"]["cost"] > 0
    assert by_id["bad"]["error"]["code"] == "invalid_line" and "/v1/chat/completions" in by_id["bad"]["error"][
        "message"]
    assert by_id["line-7"]["error"]["code"] == "invalid_line"
    assert "'tags' must be an object of strings" in by_id["tagged"]["error"]["message"]
    assert [r.body["max_tokens"] for r in sim.requests_for("openai", "chat") if "max_tokens" in r.body] == [40, 40]
    assert "succeeded" in result.stdout and "│ failed" in result.stdout and "invalid_line 3" in result.stdout


def test_2000_lines_with_10_percent_503s_complete_with_every_id_once(cli: CLI, sim) -> None:
    source = cli.directory / "in.jsonl"
    ids = write_input(source, 2000)
    sim.fault("openai", Fault.unavailable(), endpoint="chat", times=None, probability=0.1, seed=18)
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "-c", "32", "--json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 2000 and summary["failed"] == 0 and summary["retries"] > 50
    lines = read_output(cli.directory / "out.jsonl")
    counts = Counter(line["custom_id"] for line in lines)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert all(line["error"] is None for line in lines)
    chats = sim.requests_for(endpoint="chat")
    assert len(chats) > 2000  # the 503s were retried (or fell back)
    retried = sum(1 for line in lines if line["spoon_llm"]["attempts"] > 1)
    assert retried > 50
    assert summary["retries"] + summary["fallbacks"] >= retried


@pytest.mark.parametrize("interrupt", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_leaves_whole_lines_and_resumes_without_duplicates(cli: CLI, sim, interrupt) -> None:
    source = cli.directory / "in.jsonl"
    output = cli.directory / "out.jsonl"
    ids = write_input(source, 300)
    sim.fault("openai", Fault.slow(0.05), endpoint="chat", times=None)
    process = subprocess.Popen(cli.command("batch", "in.jsonl", "-o", "out.jsonl", "-c", "4"), cwd=cli.directory,
                               env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not output.exists() or output.read_text().count("\n") < 30:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the batch never wrote 30 lines"
            time.sleep(0.05)
        process.send_signal(interrupt)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted" in stdout and "re-run the same command" in stderr
    first = read_output(output)  # every line is whole JSON
    assert 30 <= len(first) < 300
    assert len({line["custom_id"] for line in first}) == len(first)
    sim.reset()
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "-c", "8")
    assert result.returncode == 0, result.stderr
    lines = read_output(output)
    counts = Counter(line["custom_id"] for line in lines)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert len(sim.requests_for(endpoint="chat")) == 300 - len(first)
    assert re.search(rf"already done\s+│\s+{len(first)}\s", result.stdout), result.stdout


def test_a_line_cut_by_a_crash_is_dropped_and_run_again(cli: CLI, sim) -> None:
    source = cli.directory / "in.jsonl"
    output = cli.directory / "out.jsonl"
    write_input(source, 3)
    done = [json.dumps({"custom_id": f"req-{i}", "response": {"status_code": 200}, "error": None}) for i in (0, 1)]
    output.write_text("\n".join(done) + "\n" + '{"custom_id": "req-2", "resp')  # the last write was cut short
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert sorted(line["custom_id"] for line in read_output(output)) == ["req-0", "req-1", "req-2"]
    assert [r.body["messages"][0]["content"] for r in sim.requests_for(endpoint="chat")] == ["question 2"]


def test_retry_failed_runs_only_the_failed_lines_again(cli: CLI, sim) -> None:
    source = cli.directory / "in.jsonl"
    output = cli.directory / "out.jsonl"
    write_input(source, 4)
    earlier = [{"custom_id": "req-0", "response": {"status_code": 200}, "error": None}] + [
        {"custom_id": f"req-{i}", "response": None, "error": {"code": "RateLimitError", "message": "slow down"}}
        for i in (1, 2, 3)]
    output.write_text("".join(json.dumps(line) + "\n" for line in earlier))
    kept = cli.run("batch", "in.jsonl", "-o", "out.jsonl")
    assert kept.returncode == 1  # failed ids count as done unless asked, and the output still holds failures
    assert "3 of them failed" in kept.stdout and sim.request_count == 0
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "--retry-failed")
    assert result.returncode == 0, result.stderr
    lines = read_output(output)
    assert sorted(line["custom_id"] for line in lines) == ["req-0", "req-1", "req-2", "req-3"]
    assert all(line["error"] is None for line in lines)
    assert sim.request_count == 3


def test_a_batch_stops_when_the_budget_runs_out_and_says_how_to_continue(cli: CLI, sim) -> None:
    with (cli.directory / "spoon_llm.toml").open("a") as config:
        config.write("\n[budget]\nlimit = 0.0001\n")
    write_input(cli.directory / "in.jsonl", 60)
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "-c", "1")
    assert result.returncode == 1
    assert "budget exhausted" in result.stderr and "re-run the same command" in result.stderr
    lines = read_output(cli.directory / "out.jsonl")
    assert 0 < len(lines) < 60
    assert lines[-1]["error"]["code"] == "BudgetExceededError"
    assert all(line["error"] is None for line in lines[:-1])
    assert len(sim.requests_for(endpoint="chat")) == len(lines) - 1
