"""``spoon-llm chat``: one-shot prompts (arguments or piped stdin) and an interactive session.

The answer streams to stdout as it arrives (plain text, so it pipes cleanly; ``--markdown`` renders it on a
terminal); a footer on stderr names the provider and model that answered, the tokens, the cost and any fallback.
``--json`` prints one JSON object instead. In a session, ``/model NAME``, ``/system TEXT``, ``/clear``, ``/cost``
and ``/exit`` steer the conversation, and earlier turns are sent with each new prompt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import mimetypes
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ._common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ConfigOption,
    build_manager,
    cli_config,
    fail,
    fail_with,
    fix_for,
    money,
    one_line,
    parse_tags,
    route_arguments,
    stderr_console,
    stdout_console,
)

if TYPE_CHECKING:
    from ..config import ConfigurationManager
    from ..manager import LLMManager
    from ..types import LLMResponse, LLMResponseChunk

SESSION_HELP = "commands: /model NAME, /system TEXT, /clear, /cost, /exit (Ctrl-D also exits)"


@dataclass
class Session:
    """The conversation and the running totals of one ``chat`` invocation."""

    config: ConfigurationManager
    model: str | None
    system: str | None
    options: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0

    def messages(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        """The system prompt, earlier turns and the new user turn."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.history, user]

    def count(self, usage: Any, cost: Any) -> None:
        """Fold one answer's usage and cost into the totals."""
        self.requests += 1
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
        if cost is None or cost.unpriced:
            self.unpriced += 1
        else:
            self.cost += cost.total_cost

    def totals_line(self) -> str:
        """``3 requests · 120 tokens (40 in, 80 out) · $0.000300``."""
        tokens = self.input_tokens + self.output_tokens
        line = (f"{self.requests} request{'s' if self.requests != 1 else ''} · {tokens} tokens "
                f"({self.input_tokens} in, {self.output_tokens} out) · {money(self.cost)}")
        if self.unpriced:
            line += f" ({self.unpriced} unpriced)"
        return line


def user_message(text: str, attachments: list[Path]) -> dict[str, Any]:
    """The user turn: plain text, or text plus image/document parts read from the attached files."""
    if not attachments:
        return {"role": "user", "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for path in attachments:
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read attachment {path}: {exc.strerror or exc}", "check the path given to -a", EXIT_USAGE)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        encoded = base64.b64encode(data).decode("ascii")
        if media_type.startswith("image/"):
            parts.append({"type": "image", "data": encoded, "media_type": media_type})
        elif media_type == "application/pdf" or media_type.startswith("text/"):
            parts.append({"type": "document", "data": encoded, "media_type": media_type, "filename": path.name})
        else:
            fail(f"attachment {path} is {media_type}, which no provider accepts",
                 "attach images (png, jpeg, gif, webp), PDFs or text files", EXIT_USAGE)
    return {"role": "user", "content": parts}


def footer(provider: str, model: str, usage: Any, cost: Any, path: list[str], attempts: int) -> str:
    """``anthropic/claude-sonnet-4-5 · 15 tokens (5 in, 10 out) · $0.000165 · fallback: openai → anthropic``."""
    parts = [f"{provider}/{model}" if model else provider]
    if usage is not None:
        parts.append(f"{usage.total_tokens} tokens ({usage.input_tokens} in, {usage.output_tokens} out)")
    if cost is not None:
        parts.append("unpriced" if cost.unpriced else money(cost.total_cost))
    if len(path) > 1:
        parts.append("fallback: " + " → ".join(path))
    elif attempts > 1:
        parts.append(f"{attempts} attempts")
    return " · ".join(parts)


def response_json(response: LLMResponse) -> dict[str, Any]:
    """What ``--json`` prints for one answer."""
    return {
        "content": response.content,
        "provider": response.provider,
        "model": response.model,
        "deployment": response.deployment,
        "finish_reason": response.finish_reason,
        "usage": response.usage.model_dump(exclude={"raw"}) if response.usage else None,
        "cost": response.cost.model_dump() if response.cost else None,
        "fallback_path": response.fallback_path,
        "attempts": [a.model_dump() for a in response.attempts],
        "request_id": response.request_id,
        "duration": response.duration,
    }


async def stream_answer(manager: LLMManager, session: Session, user: dict[str, Any], markdown: bool) -> str:
    """Stream one answer to stdout as it arrives; the footer goes to stderr. Returns the text."""
    out = stdout_console()
    live = None
    if markdown and out.is_terminal:
        from rich.live import Live
        from rich.markdown import Markdown

        live = Live(Markdown(""), console=out, refresh_per_second=12)
        live.start()
    final: LLMResponseChunk | None = None
    text = ""
    try:
        args = route_arguments(session.config, session.model)
        async for chunk in manager.chat_stream(session.messages(user), **args, **session.options):
            if chunk.delta:
                text += chunk.delta
                if live is not None:
                    live.update(Markdown(text))
                else:
                    sys.stdout.write(chunk.delta)
                    sys.stdout.flush()
            if chunk.kind == "final":
                final = chunk
    finally:
        if live is not None:
            live.stop()
        elif text and not text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
    if final is not None:
        cost = final.metadata.get("cost")
        session.count(final.usage, cost)
        path = list(final.metadata.get("fallback_path") or [final.provider])
        attempts = len(final.metadata.get("attempts") or ())
        stderr_console().print(Text(footer(final.provider, final.model, final.usage, cost, path, attempts),
                                    style="dim"), soft_wrap=True)
    return text


async def one_shot(manager: LLMManager, session: Session, user: dict[str, Any], as_json: bool, stream: bool,
                   markdown: bool) -> None:
    """Answer one prompt and close the manager."""
    try:
        if as_json:
            response = await manager.chat(session.messages(user), **route_arguments(session.config, session.model),
                                          **session.options)
            sys.stdout.write(json.dumps(response_json(response), ensure_ascii=False) + "\n")
        elif stream:
            await stream_answer(manager, session, user, markdown)
        else:
            response = await manager.chat(session.messages(user), **route_arguments(session.config, session.model),
                                          **session.options)
            sys.stdout.write(response.content + ("" if response.content.endswith("\n") else "\n"))
            session.count(response.usage, response.cost)
            stderr_console().print(Text(footer(response.provider, response.model, response.usage, response.cost,
                                               response.fallback_path, len(response.attempts)), style="dim"),
                                   soft_wrap=True)
    finally:
        await manager.cleanup()


def interactive(manager: LLMManager, session: Session, attachments: list[Path], markdown: bool) -> None:
    """A read-answer loop on one event loop (the manager's clients live on it) with line editing and history."""
    history = history_path()
    try:
        import readline  # line editing and the prompt history for input()
    except ImportError:  # pragma: no cover - Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
        readline.set_history_length(1000)
    err = stderr_console()
    err.print(Text(f"spoon-llm chat · model: {session.model or 'default'} · {SESSION_HELP}", style="dim"),
              soft_wrap=True)
    loop = asyncio.new_event_loop()
    pending = list(attachments)
    try:
        while True:
            try:
                line = input("> ")
            except EOFError:
                sys.stdout.write("\n")
                break
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                break
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not command(session, text):
                    break
                continue
            user = user_message(text, pending)
            task = loop.create_task(stream_answer(manager, session, user, markdown))
            try:
                answer = loop.run_until_complete(task)
            except KeyboardInterrupt:
                # Ctrl-C lands wherever the loop was: cancel the answer so it cannot resume with the next turn.
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
                err.print(Text("(answer interrupted; it is not kept in the conversation)", style="dim"))
                continue
            except Exception as exc:  # an LLMError: report it and keep the session
                err.print(Text.assemble(("error: ", "bold red"), one_line(str(exc) or type(exc).__name__),
                                        f" (fix: {fix_for(exc)})" if fix_for(exc) else ""), soft_wrap=True)
                continue
            pending = []
            session.history += [user, {"role": "assistant", "content": answer}]
    finally:
        loop.run_until_complete(manager.cleanup())
        loop.close()
        if readline is not None:
            with contextlib.suppress(OSError):
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)


def history_path() -> Path:
    """Where the prompts of interactive sessions are kept: next to the usage ledger (``chat_history``)."""
    from ..state import default_state_path

    return Path(default_state_path()).parent / "chat_history"


def command(session: Session, text: str) -> bool:
    """Run one ``/command``; ``False`` ends the session."""
    name, _, arg = text.partition(" ")
    arg = arg.strip()
    err = stderr_console()
    if name in ("/exit", "/quit"):
        return False
    if name == "/model":
        if arg:
            session.model = arg
        err.print(Text(f"model: {session.model or 'default'}"), soft_wrap=True)
    elif name == "/system":
        session.system = arg or None
        err.print(Text(f"system prompt: {session.system or '(none)'}"), soft_wrap=True)
    elif name == "/clear":
        session.history.clear()
        err.print(Text("conversation cleared"))
    elif name == "/cost":
        err.print(Text(f"session: {session.totals_line()}"), soft_wrap=True)
    else:
        err.print(Text(f"unknown command {name}; {SESSION_HELP}"), soft_wrap=True)
    return True


def register(app: typer.Typer) -> None:
    """Add ``chat`` to ``app``."""

    @app.command("chat")
    def chat(
        prompt: Annotated[str | None, typer.Argument(help="The prompt; without one (and no piped input) a session "
                                                          "starts.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Alias, provider, provider/model or "
                                                                        "model.")] = None,
        system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
        attach: Annotated[list[Path] | None, typer.Option("--attach", "-a", help="Image, PDF or text file "
                                                                                 "(repeatable).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (no streaming).")] = False,
        no_stream: Annotated[bool, typer.Option("--no-stream", help="Wait for the whole answer.")] = False,
        markdown: Annotated[bool, typer.Option("--markdown", help="Render markdown (terminals only).")] = False,
        temperature: Annotated[float | None, typer.Option("--temperature", "-t", min=0.0, max=2.0)] = None,
        max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="NAME=VALUE label for cost tracking "
                                                                    "(repeatable).")] = None,
        config: ConfigOption = None,
    ) -> None:
        """Ask a model: one-shot with a prompt or piped input, else an interactive session."""
        piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        if piped is not None and not piped.strip() and prompt is None:
            fail("no prompt: stdin was empty", 'pass a prompt: spoon-llm chat "..."', EXIT_USAGE)
        text = prompt
        if piped and piped.strip():
            text = piped if prompt is None else f"{piped.rstrip()}\n\n{prompt}"
        options: dict[str, Any] = {}
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        tags = parse_tags(tag)
        if tags:
            options["tags"] = tags
        attachments = list(attach or ())
        cfg = cli_config(config)
        session = Session(cfg, model, system, options)
        if text is None and as_json:
            fail("--json needs a prompt", 'pass one: spoon-llm chat --json "..."', EXIT_USAGE)
        user = user_message(text, attachments) if text is not None else None
        manager = build_manager(cfg)
        if user is None:
            interactive(manager, session, attachments, markdown)
            return
        from ..errors import LLMError

        try:
            asyncio.run(one_shot(manager, session, user, as_json, not no_stream, markdown))
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except LLMError as exc:
            fail_with(exc)
