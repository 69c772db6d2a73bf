"""``spoon-llm batch``: run a JSONL file of chat requests through the manager, resumably, in bounded memory.

Input lines are read one at a time and at most ``--concurrency`` requests are in flight, so a 100,000-line file
costs no more memory than a 100-line one (plus the set of ids already done). Each result is written to the output
file as one whole line as soon as it arrives; a re-run skips every id already there, and Ctrl-C leaves only whole
lines behind. Retries, fallbacks, rate limits and budgets are the manager's: the configuration decides them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ._batch_io import Job, count_lines, error_line, finished_ids, read_jobs, success_line
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    build_manager,
    cli_config,
    fail,
    money,
    parse_tags,
    route_arguments,
    stderr_console,
    stdout_console,
    warn,
)

if TYPE_CHECKING:
    from ..config import ConfigurationManager
    from ..manager import LLMManager
    from ..types import LLMResponse


@dataclass
class Tally:
    """What a batch run did, for the progress line and the summary table."""

    total: int = 0
    skipped: int = 0
    failed_before: int = 0  # failed lines already in the output (kept unless --retry-failed)
    duplicates: int = 0
    succeeded: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0
    retries: int = 0
    fallbacks: int = 0
    by_provider: dict[str, list[float]] = field(default_factory=dict)  # provider -> [requests, cost]
    errors: dict[str, int] = field(default_factory=dict)  # error type -> count
    started: float = field(default_factory=time.monotonic)

    def answered(self, response: LLMResponse) -> None:
        """Count one success."""
        self.succeeded += 1
        if response.usage is not None:
            self.input_tokens += response.usage.input_tokens
            self.output_tokens += response.usage.output_tokens
        cost = 0.0
        if response.cost is None or response.cost.unpriced:
            self.unpriced += 1
        else:
            cost = response.cost.total_cost
            self.cost += cost
        self.retries += max(0, len(response.attempts) - 1)
        if len(response.fallback_path) > 1:
            self.fallbacks += 1
        entry = self.by_provider.setdefault(response.provider, [0, 0.0])
        entry[0] += 1
        entry[1] += cost

    def failure(self, kind: str) -> None:
        """Count one failed line."""
        self.failed += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def ran(self) -> int:
        """Lines answered or failed in this run."""
        return self.succeeded + self.failed


class Runner:
    """Workers pulling jobs from one shared iterator; results written as whole lines."""

    def __init__(self, manager: LLMManager, config: ConfigurationManager, out: IO[str], tally: Tally,
                 model: str | None, tags: dict[str, str] | None, progress: Progress, task: TaskID) -> None:
        self.manager = manager
        self.config = config
        self.out = out
        self.tally = tally
        self.model = model
        self.tags = tags
        self.progress = progress
        self.task = task
        self.stopped: str | None = None  # why no new line is started (a budget ran out)

    def write(self, record: dict[str, Any]) -> None:
        """Append one whole line and flush it, so an interruption never leaves half a line behind."""
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def advance(self) -> None:
        """Move the progress bar and its counters."""
        tally = self.tally
        elapsed = max(time.monotonic() - tally.started, 1e-9)
        self.progress.update(self.task, advance=1, ok=tally.succeeded, failed=tally.failed, cost=money(tally.cost),
                             rate=f"{tally.ran / elapsed:.1f}/s")

    async def worker(self, jobs: Iterator[Job]) -> None:
        """Run jobs until the iterator is empty or the run is stopped."""
        from ..errors import BudgetExceededError

        for job in jobs:  # one shared iterator: each job goes to exactly one worker
            if self.stopped:
                return
            if job.problem is not None:
                self.write(error_line(job, None))
                self.tally.failure("invalid_line")
                self.advance()
                continue
            kwargs = dict(job.kwargs or {})
            if self.tags:
                kwargs["tags"] = {**self.tags, **kwargs.get("tags", {})}
            route = route_arguments(self.config, self.model or job.model)
            try:
                response = await self.manager.chat(job.messages or [], **route, **kwargs)
            except Exception as exc:  # an LLMError, or a bad argument in the line: that line fails, not the run
                self.write(error_line(job, exc))
                self.tally.failure(type(exc).__name__)
                if isinstance(exc, BudgetExceededError):
                    self.stopped = f"budget exhausted: {exc}"
            else:
                self.write(success_line(job, response))
                self.tally.answered(response)
            self.advance()


def pending_jobs(path: Path, done: set[str], tally: Tally, progress: Progress, task: TaskID) -> Iterator[Job]:
    """Jobs of ``path`` not yet in the output; ids seen twice in the input run once."""
    seen: set[str] = set()
    for job in read_jobs(path):
        if job.id in done:
            tally.skipped += 1
        elif job.id in seen:
            tally.duplicates += 1
        else:
            seen.add(job.id)
            yield job
            continue
        progress.update(task, advance=1)


async def run_batch(manager: LLMManager, config: ConfigurationManager, source: Path, target: Path, *,
                    concurrency: int, model: str | None, tags: dict[str, str] | None, retry_failed: bool,
                    show_progress: bool) -> tuple[Tally, bool, str | None]:
    """Run the file; returns the tally, whether it was interrupted, and why it stopped early (if it did)."""
    tally = Tally(total=count_lines(source))
    done, tally.failed_before = finished_ids(target, drop_failed=retry_failed)
    resumed = len(done)
    progress = Progress(
        TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("ok {task.fields[ok]} · failed {task.fields[failed]} · {task.fields[cost]} · {task.fields[rate]}"),
        console=stderr_console(), disable=not show_progress, transient=False,
    )
    task = progress.add_task("batch", total=tally.total, ok=0, failed=0, cost=money(0.0), rate="-")
    interrupted = False
    with progress, target.open("a", encoding="utf-8") as out:
        runner = Runner(manager, config, out, tally, model, tags, progress, task)
        jobs = pending_jobs(source, done, tally, progress, task)
        workers = [asyncio.ensure_future(runner.worker(jobs)) for _ in range(concurrency)]
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on this platform
            loop.add_signal_handler(signal.SIGTERM, main.cancel if main is not None else lambda: None)
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:  # Ctrl-C (asyncio.run cancels this task) or SIGTERM (the handler above)
            interrupted = True
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await manager.cleanup()
    if resumed and not tally.skipped:
        warn(f"{target} held {resumed} ids that are not in {source}")
    return tally, interrupted, runner.stopped


def summary(tally: Tally, source: Path, target: Path, interrupted: bool) -> Table:
    """The table printed at the end of a run."""
    elapsed = time.monotonic() - tally.started
    table = Table(title=Text(f"batch {source.name} → {target.name}" + (" (interrupted)" if interrupted else "")),
                  show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("lines", str(tally.total))
    table.add_row("already done", str(tally.skipped) + (f" ({tally.failed_before} of them failed: --retry-failed "
                                                         "runs them again)" if tally.failed_before else ""))
    if tally.duplicates:
        table.add_row("duplicate ids skipped", str(tally.duplicates))
    table.add_row("succeeded", str(tally.succeeded))
    failed = str(tally.failed)
    if tally.errors:
        failed += " (" + ", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items())) + ")"
    table.add_row("failed", Text(failed))  # error class names are ours, but never read text as markup
    table.add_row("tokens", f"{tally.input_tokens + tally.output_tokens} ({tally.input_tokens} in, "
                            f"{tally.output_tokens} out)")
    table.add_row("cost", money(tally.cost) + (f" ({tally.unpriced} unpriced)" if tally.unpriced else ""))
    table.add_row("retries", str(tally.retries))
    table.add_row("fallbacks", str(tally.fallbacks))
    for provider, (requests, cost) in sorted(tally.by_provider.items()):
        table.add_row(Text(f"  {provider}"), f"{int(requests)} requests, {money(cost)}")
    rate = tally.ran / elapsed if elapsed > 0 else 0.0
    table.add_row("elapsed", f"{elapsed:.1f} s ({rate:.1f} requests/s)")
    return table


def summary_json(tally: Tally, interrupted: bool, stopped: str | None) -> dict[str, Any]:
    """The summary for machines (``--json``)."""
    return {
        "lines": tally.total, "already_done": tally.skipped, "failed_before": tally.failed_before,
        "duplicates": tally.duplicates, "succeeded": tally.succeeded, "failed": tally.failed, "errors": tally.errors,
        "input_tokens": tally.input_tokens, "output_tokens": tally.output_tokens, "cost": tally.cost,
        "unpriced": tally.unpriced, "retries": tally.retries, "fallbacks": tally.fallbacks,
        "by_provider": {name: {"requests": int(n), "cost": cost} for name, (n, cost) in tally.by_provider.items()},
        "seconds": round(time.monotonic() - tally.started, 3), "interrupted": interrupted, "stopped": stopped,
    }


def register(app: typer.Typer) -> None:
    """Add ``batch`` to ``app``."""

    @app.command("batch")
    def batch(
        source: Annotated[Path, typer.Argument(help="Input JSONL (OpenAI Batch lines or {id, messages|prompt}).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Output JSONL (appended to; resumable).")],
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model for every line (overrides the "
                                                                        "lines' own).")] = None,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=1000,
                                                 help="Requests in flight.")] = 16,
        retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Drop failed lines from the output and "
                                                                          "run them again.")] = False,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="NAME=VALUE label for cost tracking.")] = None,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        config: Annotated[str | None, typer.Option("--config", help="Configuration file.")] = None,
    ) -> None:
        """Run a JSONL file of chat requests; re-running skips ids already in the output."""
        if not source.is_file():
            fail(f"input file {source} not found", "check the path", EXIT_USAGE)
        if output.resolve() == source.resolve():
            fail("the output file is the input file", "write the results elsewhere with -o", EXIT_USAGE)
        if output.is_dir():
            fail(f"the output {output} is a directory", "give a file path with -o", EXIT_USAGE)
        if not output.parent.is_dir():
            fail(f"the output's directory {output.parent} does not exist", "create it, or write elsewhere with -o",
                 EXIT_USAGE)
        tags = parse_tags(tag)
        cfg = cli_config(config)
        manager = build_manager(cfg)
        show = not no_progress and stderr_console().is_terminal
        tally, interrupted, stopped = asyncio.run(run_batch(
            manager, cfg, source, output, concurrency=concurrency, model=model, tags=tags,
            retry_failed=retry_failed, show_progress=show))
        if as_json:
            sys.stdout.write(json.dumps(summary_json(tally, interrupted, stopped)) + "\n")
        else:
            stdout_console().print(summary(tally, source, output, interrupted))
        if stopped:
            warn(f"stopped early, {stopped}; re-run the same command to continue")
        if interrupted:
            warn(f"interrupted; {output} holds every finished line: re-run the same command to continue")
            raise typer.Exit(EXIT_INTERRUPTED)
        if tally.failed or tally.failed_before or stopped:
            raise typer.Exit(EXIT_FAILED)
