"""Run the provider simulator: ``python -m spoon_llm.testing [--host H] [--port N]``.

Prints ``spoon-llm simulator listening on http://HOST:PORT`` once ready (benchmarks read the
port from that line), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys

from ._simulator import serve_forever


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m spoon_llm.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuse-port", action="store_true", help="share the port with other processes")
    args = parser.parse_args(argv)

    def ready(port: int) -> None:
        print(f"spoon-llm simulator listening on http://{args.host}:{port}", flush=True)

    serve_forever(args.host, args.port, ready_callback=ready, reuse_port=args.reuse_port)


if __name__ == "__main__":
    main(sys.argv[1:])
