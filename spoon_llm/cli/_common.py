"""What every command shares: consoles, one-line errors with the fix, exit codes, configuration and the manager.

Exit codes (the same for every command):

* ``0``: success.
* ``1``: the work failed: a request or some batch lines failed, a deployment is down, the configuration is invalid.
* ``2``: the command line itself is wrong (unknown option, bad value, missing file).
* ``130``: interrupted with Ctrl-C (a batch output file is left valid and resumable).

Errors go to stderr as one line, ``error: <what went wrong> (fix: <what to do>)``. Text that came from a user or
a model is never read as rich markup, and ``NO_COLOR`` turns colours off (rich honours it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from ..config import ConfigurationManager
    from ..manager import LLMManager

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Configuration file (default: $SPOON_LLM_CONFIG, then spoon_llm.toml)."),
]


def stdout_console() -> Console:
    """The console for results (built per command, so ``NO_COLOR`` and the width are read when it runs)."""
    return Console(highlight=False)


def stderr_console() -> Console:
    """The console for errors, warnings and progress."""
    return Console(stderr=True, highlight=False)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded into one space."""
    return " ".join(str(text).split())


def warn(message: str) -> None:
    """Print ``warning: message`` to stderr on one line."""
    stderr_console().print(Text.assemble(("warning: ", "yellow"), one_line(message)), soft_wrap=True)


def fail(message: str, fix: str | None = None, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message (fix: ...)`` to stderr on one line and exit with ``code``."""
    line = one_line(message)
    if fix:
        line += f" (fix: {one_line(fix)})"
    stderr_console().print(Text.assemble(("error: ", "bold red"), line), soft_wrap=True)
    raise typer.Exit(code=code)


def fix_for(exc: BaseException) -> str | None:
    """The usual remedy for an error of this kind (``None`` when its message already says it)."""
    from .. import errors

    if isinstance(exc, errors.AuthenticationError):
        return "check the provider's api_key in the configuration or its <PROVIDER>_API_KEY variable"
    if isinstance(exc, errors.ModelNotFoundError):
        return "pick a model from `spoon-llm models`"
    if isinstance(exc, errors.RateLimitError):
        return "wait and retry, or lower the concurrency"
    if isinstance(exc, errors.BudgetExceededError):
        return "raise the [budget] limit or wait for the next period"
    if isinstance(exc, errors.ProviderUnavailableError) and exc.error_code == "no_deployment_available":
        return None  # nothing was sent: the message names each deployment, why it is out and when it returns
    if isinstance(exc, (errors.NetworkError, errors.ProviderUnavailableError)):
        return "check the provider's base_url and that it is reachable; `spoon-llm health` checks every deployment"
    if isinstance(exc, errors.AllProvidersFailedError):
        return "`spoon-llm health` shows which deployments are down"
    return None


def fail_with(exc: BaseException, code: int = EXIT_FAILED) -> NoReturn:
    """Report an ``LLMError`` (or any error) on one line with its fix, then exit."""
    fail(str(exc) or type(exc).__name__, fix_for(exc), code)


def load_config(path: str | None) -> ConfigurationManager:
    """Load the configuration (warnings to stderr); an invalid file exits 1 naming the file, key and fix."""
    from ..config import ConfigurationManager
    from ..errors import ConfigurationError

    if path is not None and not Path(path).exists():  # a usage mistake, as a missing input file is
        fail(f"the configuration file {path!r} does not exist", "give the path of an existing TOML or JSON file",
             EXIT_USAGE)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            manager = ConfigurationManager(path)
    except ConfigurationError as exc:
        fail(str(exc))
    for warning in caught:
        warn(str(warning.message))
    return manager


def cli_config(path: str | None) -> ConfigurationManager:
    """The configuration for commands that send requests: usage goes to the persistent ledger.

    A command-line process is short-lived, so a ledger left at ``auto`` (memory without a budget) would forget
    every request at exit; the CLI records to the SQLite ledger instead, where ``spoon-llm costs`` reads it.
    A ledger named in ``[state]`` is used as configured.
    """
    manager = load_config(path)
    state = manager.config.state
    if state.ledger == "auto" and state.backend != "redis":
        from ..config import ConfigurationManager

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported by the first load
            manager = ConfigurationManager(path, overrides={"state": {"ledger": "sqlite"}})
    return manager


def build_manager(config: ConfigurationManager) -> LLMManager:
    """An :class:`LLMManager` over ``config``; a configuration problem exits 1 with the fix."""
    from ..errors import LLMError
    from ..manager import LLMManager

    try:
        manager = LLMManager(config)
    except LLMError as exc:
        fail_with(exc)
    if not manager.router.deployments:
        fail("no provider is configured",
             "add a [providers.<name>] section to spoon_llm.toml (or pass --config), or set an API key such as "
             "OPENAI_API_KEY")
    return manager


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn an ``LLMError`` escaping a command into the one-line error and exit code 1."""
    from ..errors import LLMError

    try:
        yield
    except LLMError as exc:
        fail_with(exc)


def parse_tags(values: list[str] | None) -> dict[str, str] | None:
    """``["team=research", "user=ann"]`` as a dict; a value without ``=`` is a usage error."""
    if not values:
        return None
    tags: dict[str, str] = {}
    for value in values:
        name, sep, tag = value.partition("=")
        if not sep or not name:
            fail(f"--tag {value!r} is not NAME=VALUE", "write it as --tag team=research", EXIT_USAGE)
        tags[name] = tag
    return tags


def money(value: float | None) -> str:
    """A cost for people: ``$0.000165`` (``-`` when unknown)."""
    if value is None:
        return "-"
    return f"${value:.6f}" if value < 1 else f"${value:,.2f}"


def route_arguments(config: ConfigurationManager, model: str | None) -> dict[str, Any]:
    """``provider=`` / ``model=`` for a ``-m`` value: a provider name, an alias, ``provider/model`` or a model."""
    if model is None:
        return {}
    if model in config.config.providers and model not in config.config.models:
        return {"provider": model}
    return {"model": model}
