"""``spoon-llm simulate``: serve the provider simulator, with injected faults, strict checks and a request log."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ..testing._script import _VENDOR_ALIASES, VENDORS
from ._common import EXIT_FAILED, EXIT_USAGE, fail, stdout_console

if TYPE_CHECKING:
    from ..testing import Fault, ProviderSimulator, RecordedRequest

FAULT_HELP = (
    "VENDOR:KIND[=ARG][:HOW_OFTEN], repeatable. VENDOR: openai, anthropic, gemini, openrouter, deepseek or * "
    "(any). KIND: unavailable, server_error, overloaded, rate_limited[=RETRY_AFTER], unauthorized, forbidden, "
    "model_not_found, context_length_exceeded[=LIMIT], slow=SECONDS, slow_stream=SECONDS, connection_reset, "
    "disconnect[=EVENTS], truncated_stream[=EVENTS], malformed_json, or an HTTP status (e.g. 502). HOW_OFTEN: "
    "the next N requests (default 1), * for every request, or N% of requests."
)
# Kinds that take no argument, and those whose optional argument is a number.
_PLAIN = ("unauthorized", "forbidden", "model_not_found", "server_error", "connection_reset", "malformed_json")
_NUMERIC = {"unavailable": "retry_after", "overloaded": "retry_after", "rate_limited": "retry_after",
            "context_length_exceeded": "limit", "slow": "seconds", "slow_stream": "seconds", "disconnect": "after",
            "truncated_stream": "after"}
#: Every vendor the simulator serves, its aliases, and "*" for all of them.
_VENDORS = (*VENDORS, *_VENDOR_ALIASES, "*")


class FaultSpec:
    """One parsed ``--fault``: the fault, whom it hits, and how often."""

    def __init__(self, vendor: str | None, fault: Fault, times: int | None, probability: float) -> None:
        self.vendor = vendor
        self.fault = fault
        self.times = times
        self.probability = probability

    def apply(self, simulator: ProviderSimulator, seed: int | None) -> None:
        """Register the fault with ``simulator``."""
        simulator.fault(self.vendor, self.fault, endpoint="chat", times=self.times, probability=self.probability,
                        seed=seed)


def parse_fault(spec: str) -> FaultSpec:
    """Parse ``openai:unavailable:3``, ``*:rate_limited=2:10%``, ``anthropic:529:*``; a bad spec exits 2."""
    from ..testing import Fault

    parts = spec.split(":")
    if len(parts) not in (2, 3):
        fail(f"--fault {spec!r} is not VENDOR:KIND[:HOW_OFTEN]", "e.g. --fault openai:unavailable:3", EXIT_USAGE)
    vendor, kind_arg = parts[0].strip().lower(), parts[1].strip()
    how_often = parts[2].strip() if len(parts) == 3 else "1"
    if vendor not in _VENDORS:
        fail(f"--fault {spec!r}: unknown vendor {vendor!r}", f"use one of {', '.join(_VENDORS)}", EXIT_USAGE)
    kind, _, arg = kind_arg.partition("=")
    fault: Fault
    if kind.isdigit():
        status = int(kind)
        if not 400 <= status <= 599:
            fail(f"--fault {spec!r}: status {status} is not an error status", "use 400-599", EXIT_USAGE)
        fault = Fault.error(status)
    elif kind in _PLAIN and not arg:
        fault = getattr(Fault, kind)()
    elif kind in _NUMERIC:
        try:
            number = float(arg) if arg else None
        except ValueError:
            number = None
            fail(f"--fault {spec!r}: {arg!r} is not a number", f"write {kind}=<{_NUMERIC[kind]}>", EXIT_USAGE)
        if number is None and kind in ("slow", "slow_stream"):
            fail(f"--fault {spec!r}: {kind} needs seconds", f"write {kind}=2", EXIT_USAGE)
        args: tuple[Any, ...] = () if number is None else (int(number) if _NUMERIC[kind] in ("limit", "after")
                                                            else number,)
        fault = getattr(Fault, kind)(*args)
    else:
        fail(f"--fault {spec!r}: unknown kind {kind_arg!r}", FAULT_HELP, EXIT_USAGE)
    times: int | None = 1
    probability = 1.0
    if how_often in ("*", "always"):
        times = None
    elif re.fullmatch(r"\d+(\.\d+)?%", how_often):
        times, probability = None, float(how_often[:-1]) / 100
        if not 0 < probability <= 1:
            fail(f"--fault {spec!r}: {how_often} is not a share of requests", "use 1% to 100%", EXIT_USAGE)
    elif how_often.isdigit() and int(how_often) > 0:
        times = int(how_often)
    else:
        fail(f"--fault {spec!r}: {how_often!r} is not a count, * or a percentage", "e.g. :3, :* or :10%",
             EXIT_USAGE)
    return FaultSpec(None if vendor == "*" else vendor, fault, times, probability)


class RequestLog:
    """``--log``: one JSON line per request (credentials already masked by the recorder), flushed per line."""

    def __init__(self, path: Path) -> None:
        try:
            self._file: IO[str] = path.open("a", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot open the request log {path}: {exc.strerror or exc}", "check the directory exists",
                 EXIT_USAGE)

    def __call__(self, request: RecordedRequest, status: int) -> None:
        """Append one request."""
        entry = {"time": request.time, "method": request.method, "path": request.path, "query": request.query,
                 "vendor": request.vendor, "endpoint": request.endpoint, "model": request.model,
                 "stream": request.stream, "status": status, "headers": request.headers, "body": request.body}
        self._file.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to ``app``."""

    @app.command("simulate")
    def simulate(
        port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
        host: Annotated[str, typer.Option("--host", help="Loopback address to bind.")] = "127.0.0.1",
        fault: Annotated[list[str] | None, typer.Option("--fault", "-f", help=FAULT_HELP)] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Seed for N% faults (reproducible runs).")] = None,
        strict: Annotated[bool, typer.Option("--strict", help="Refuse what real APIs refuse: missing keys, empty "
                                                              "messages, out-of-range or unknown parameters.")] = False,
        models: Annotated[str | None, typer.Option("--models", help="Comma-separated model ids; with --strict, "
                                                                    "any other model is a 404.")] = None,
        log: Annotated[Path | None, typer.Option("--log", help="Append every request as a JSON line to this "
                                                               "file.")] = None,
    ) -> None:
        """Serve the local provider simulator (OpenAI, Anthropic, Gemini, OpenRouter, DeepSeek) until interrupted."""
        from ..testing import ProviderSimulator, serve_forever

        if models and not strict:
            fail("--models only takes effect with --strict", "add --strict", EXIT_USAGE)
        specs = [parse_fault(spec) for spec in fault or ()]
        allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None
        request_log = RequestLog(log) if log is not None else None
        simulator = ProviderSimulator(host, port, strict=(allowed or True) if strict else False,
                                      on_answer=request_log)
        for spec in specs:
            spec.apply(simulator, seed)
        out = stdout_console()

        def ready(bound: int) -> None:
            out.print(Text(f"provider simulator listening on http://{host}:{bound}"), soft_wrap=True)
            out.print(Text(f"  OpenAI-compatible: http://{host}:{bound}/v1"), soft_wrap=True)
            out.print(Text(f"  Anthropic:         http://{host}:{bound}"), soft_wrap=True)
            out.print(Text(f"  Gemini:            http://{host}:{bound}"), soft_wrap=True)
            notes = [f"{len(specs)} fault{'s' if len(specs) != 1 else ''}"] if specs else []
            if strict:
                notes.append("strict" + (f" (models: {', '.join(allowed)})" if allowed else ""))
            if log is not None:
                notes.append(f"logging requests to {log}")
            if notes:
                out.print(Text("  " + "; ".join(notes)), soft_wrap=True)
            out.file.flush()

        try:
            serve_forever(host=host, port=port, ready_callback=ready, simulator=simulator)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is already in use", "pick another with --port, or --port 0 for a free one")
            fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", "check --host and --port", EXIT_FAILED)
        except KeyboardInterrupt:
            pass
        finally:
            if request_log is not None:
                request_log.close()
