"""Starting the gateway under uvicorn (httptools and uvloop when installed) and stopping it gracefully.

On SIGTERM or Ctrl-C uvicorn stops accepting connections and waits up to ``[server] drain_timeout`` seconds for
the requests in flight (streams included) to finish; then the app's lifespan shutdown flushes the access log and
closes the manager's clients and the key store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..config.manager import ConfigurationManager
from ..config.sources import CONFIG_FILE_ENV
from ..errors import ConfigurationError
from ._settings import ServerSettings, is_loopback

__all__ = ["check_binding", "serve"]


def check_binding(settings: ServerSettings, host: str) -> None:
    """Refuse to listen beyond loopback without a master key: the gateway would spend its providers' money."""
    if not is_loopback(host) and settings.master_key_value is None:
        raise ConfigurationError(
            f"refusing to listen on {host!r} without a master key; set [server] master_key (or the environment "
            "variable SPOON_LLM_MASTER_KEY), or bind to 127.0.0.1",
            key="server.master_key",
        )


def _uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    return {
        "loop": settings.loop,
        "http": settings.http,
        "lifespan": "on",
        "access_log": False,  # the gateway writes its own JSON access log, off the request path
        "log_level": "warning",
        "timeout_graceful_shutdown": settings.drain_timeout,
        "server_header": False,
        "date_header": False,
    }


def serve(config_path: str | None = None, *, host: str | None = None, port: int | None = None,
          workers: int | None = None) -> None:
    """Run the gateway until interrupted (command-line options win over the ``[server]`` section)."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('The gateway needs the server extra: pip install "spoon-llm[server]"') from exc
    from .app import create_app

    config = ConfigurationManager(config_path)
    settings = config.config.server.resolved()
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    check_binding(settings, host)
    options = _uvicorn_options(settings)
    where = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    sys.stderr.write(f"spoon-llm gateway on {where} ({workers} worker{'s' if workers > 1 else ''}, "
                     f"configuration: {config.source_name or 'environment'})\n")
    sys.stderr.flush()
    if workers == 1:
        app = create_app(config)
        app.tune_gc = True  # this process serves the gateway only: see tune_collector
        uvicorn.run(app, host=host, port=port, **options)
        return
    # Worker processes build their own app from the same file: pass its absolute path down.
    if config_path is not None:
        os.environ[CONFIG_FILE_ENV] = str(Path(config_path).resolve())
    uvicorn.run("spoon_llm.server.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                **options)
