"""``spoon-llm chat``: one-shot, piped, JSON, attachments, errors, and an interactive session through a pty."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import subprocess
import time

from spoon_llm.testing import Fault, Reply

from .conftest import ANTHROPIC_KEY, CLI, KEY


def test_one_shot_streams_the_answer_to_stdout_and_the_footer_to_stderr(cli: CLI, sim) -> None:
    result = cli.run("chat", "hello there")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Simulated reply to: hello there\n"
    footer = result.stderr.strip()
    assert footer.startswith("openai/gpt-4.1-mini · ")
    assert "tokens (" in footer and "$0.0000" in footer
    request = sim.last_request("openai")
    assert request.stream is True and request.body["messages"] == [{"role": "user", "content": "hello there"}]
    assert KEY not in result.stdout + result.stderr


def test_piped_input_comes_before_the_prompt_and_system_is_sent(cli: CLI, sim) -> None:
    result = cli.run("chat", "-m", "fast", "-s", "be brief", "summarise", stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    body = sim.last_request("openai").body
    assert body["messages"] == [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "line one\nline two\n\nsummarise"}]
    assert result.stdout.startswith("Simulated reply to: line one")


def test_piped_input_alone_is_the_prompt(cli: CLI, sim) -> None:
    result = cli.run("chat", "--no-stream", stdin="only stdin")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Simulated reply to: only stdin\n"
    assert sim.last_request("openai").stream is False


def test_user_text_is_never_read_as_markup(cli: CLI, sim) -> None:
    sim.script("openai", Reply(text="[bold red]not markup[/] and [link=x]y[/link]"))
    result = cli.run("chat", "[b]hi[/b]")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[bold red]not markup[/] and [link=x]y[/link]\n"


def test_json_names_provider_cost_and_the_fallback_path(cli: CLI, sim) -> None:
    sim.fault("openai", Fault.model_not_found(), endpoint="chat")
    result = cli.run("chat", "--json", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["content"] == "Simulated reply to: hi"
    assert data["provider"] == "anthropic" and data["fallback_path"] == ["openai", "anthropic"]
    assert data["usage"]["total_tokens"] > 0 and data["cost"]["total_cost"] > 0
    assert [a["error_type"] for a in data["attempts"]] == ["ModelNotFoundError", None]
    assert ANTHROPIC_KEY not in result.stdout


def test_the_footer_shows_a_fallback(cli: CLI, sim) -> None:
    sim.fault("openai", Fault.unauthorized(), endpoint="chat")
    result = cli.run("chat", "hi")
    assert result.returncode == 0, result.stderr
    assert "anthropic/claude-sonnet-4-5" in result.stderr and "fallback: openai → anthropic" in result.stderr


def test_attachments_become_image_and_document_parts(cli: CLI, sim) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (cli.directory / "cat.png").write_bytes(png)
    (cli.directory / "doc.pdf").write_bytes(b"%PDF-1.4 tiny")
    result = cli.run("chat", "-m", "anthropic", "-a", "cat.png", "-a", "doc.pdf", "describe")
    assert result.returncode == 0, result.stderr
    content = sim.last_request("anthropic").body["messages"][0]["content"]
    kinds = [part["type"] for part in content]
    assert kinds == ["text", "image", "document"]
    assert content[1]["source"]["data"] == base64.b64encode(png).decode()
    assert content[1]["source"]["media_type"] == "image/png"
    assert content[2]["source"]["media_type"] == "application/pdf"


def test_a_missing_attachment_is_a_usage_error(cli: CLI) -> None:
    result = cli.run("chat", "-a", "nope.png", "hi")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "nope.png" in result.stderr and "fix:" in result.stderr


def test_a_failed_request_is_one_line_with_the_fix_and_exit_1(cli: CLI, sim) -> None:
    sim.fault(None, Fault.unauthorized(), endpoint="chat", times=None)
    result = cli.run("chat", "hi")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(fix: " in lines[0]
    assert KEY not in result.stderr and ANTHROPIC_KEY not in result.stderr


class Terminal:
    """A ``spoon-llm chat`` session on a pseudo-terminal."""

    def __init__(self, cli: CLI) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(cli.command("chat"), stdin=slave, stdout=slave, stderr=slave, env=cli.env,
                                        cwd=cli.directory, close_fds=True)
        os.close(slave)
        self.seen = ""
        self.log = ""  # everything the terminal showed

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never appeared; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the session ended
                    data = b""
                if not data:
                    assert text in self.seen, f"{text!r} never appeared; the terminal shows:\n{self.seen}"
                self.seen += data.decode("utf-8", "replace")
                self.log += data.decode("utf-8", "replace")
        index = self.seen.index(text) + len(text)
        before, self.seen = self.seen[:index], self.seen[index:]
        return before

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        finally:
            os.close(self.master)


def test_an_interactive_session_streams_switches_models_and_totals_costs(cli: CLI, sim) -> None:
    term = Terminal(cli)
    try:
        term.expect("> ")
        term.send("first question")
        term.expect("Simulated reply to: first question")
        term.expect("openai/gpt-4.1-mini · ")
        term.expect("> ")
        term.send("/model anthropic")
        term.expect("model: anthropic")
        term.send("second [b]question[/b]")
        term.expect("Simulated reply to: second [b]question[/b]")
        term.expect("anthropic/claude-sonnet-4-5 · ")
        term.send("/cost")
        term.expect("session: ")
        totals = term.expect("\n")
        assert totals.startswith("2 requests · ") and " in, " in totals and "$0.0" in totals
        term.send("/clear")
        term.expect("conversation cleared")
        term.send("/exit")
        assert term.close() == 0
        assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", term.log), "NO_COLOR is set: no colour codes"
    finally:
        if term.process.poll() is None:
            term.process.kill()
            term.process.wait()
    prompts = (cli.directory / "chat_history").read_text()
    assert "first question" in prompts and "/model anthropic" in prompts
    chats = sim.requests_for(endpoint="chat")
    assert [r.vendor for r in chats] == ["openai", "anthropic"]
    assert all(r.stream for r in chats)
    # The second turn carried the first turn's history.
    history = chats[1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
