"""User mistakes at the command line are a one-line error with a fix and exit code 2, never a traceback."""

from __future__ import annotations

import json

from .conftest import CLI


def _no_traceback(result: object) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout  # type: ignore[attr-defined]


def test_batch_refuses_an_output_it_cannot_write_before_running(cli: CLI) -> None:
    (cli.directory / "in.jsonl").write_text(json.dumps({"id": "a", "prompt": "hi"}) + "\n")
    (cli.directory / "outdir").mkdir()
    for target in ("missing-dir/out.jsonl", "outdir"):
        result = cli.run("batch", "in.jsonl", "-o", target, "--no-progress")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and "fix:" in result.stderr
        _no_traceback(result)


def test_batch_fails_a_line_that_is_not_utf8_and_runs_the_others(cli: CLI) -> None:
    (cli.directory / "in.jsonl").write_bytes(json.dumps({"id": "good", "prompt": "hi"}).encode() + b"\n"
                                             + b'{"id": "bad", "prompt": "\xff\xfe"}\n')
    result = cli.run("batch", "in.jsonl", "-o", "out.jsonl", "--no-progress")
    assert result.returncode == 1, result.stderr  # one line failed
    _no_traceback(result)
    lines = {line["custom_id"]: line for line in map(json.loads, (cli.directory / "out.jsonl").read_text()
                                                    .splitlines())}
    assert lines["good"]["error"] is None and "UTF-8" in lines["line-2"]["error"]["message"]


def test_dates_beyond_year_9999_are_refused(cli: CLI) -> None:
    cli.env["SPOON_LLM_MASTER_KEY"] = "sk-master-cli-edges-0123456789"
    for args in (("keys", "create", "far", "--expires", "99999999999d"),
                 ("keys", "create", "far", "--expires", "9999-12-31T23:59:59-12:00")):
        result = cli.run(*args)
        assert result.returncode != 0 and "9999" in result.stderr
        _no_traceback(result)
    assert cli.run("keys", "list").returncode == 0
    for since in ("1000000d", "9999-12-31T23:59:59-12:00"):
        result = cli.run("costs", "--since", since)
        assert result.returncode == 2 and "fix:" in result.stderr
        _no_traceback(result)


def test_serve_refuses_a_port_or_worker_count_out_of_range(cli: CLI) -> None:
    for args in (("--port", "99999"), ("--port", "-5"), ("--workers", "1000")):
        result = cli.run("serve", *args, timeout=60)
        assert result.returncode == 2 and "Invalid value" in result.stderr, result.stderr
        _no_traceback(result)


def test_a_missing_configuration_file_is_a_usage_error(cli: CLI) -> None:
    for args in (("config", "validate", "no-such.toml"), ("chat", "--config", "no-such.toml", "hi")):
        result = cli.run(*args)
        assert result.returncode == 2 and "does not exist" in result.stderr, result.stderr
        _no_traceback(result)
