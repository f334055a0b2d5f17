"""``rattan serve``: run the HTTP API on uvicorn.

    rattan serve --store sqlite:///rattan.db --host 127.0.0.1 --port 8000 --tokens tokens.txt

``main(argv)`` is the whole command (``python -m rattan.server.cli ...`` runs it too);
``add_parser(subparsers)`` and ``serve(args)`` let ``rattan``'s own CLI offer it as a subcommand.
Exit codes: 0 after a clean shutdown, 2 for bad options or a bad tokens file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from rattan import logs

DEFAULT_PORT = 8000


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--store", default=None, help="store URL or path (default: $RATTAN_STORE or rattan.db)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--tokens", required=True, help="tokens file: one 'TOKEN SCOPE[,SCOPE]' per line")
    parser.add_argument(
        "--component-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module (packages recursively) so its components register; repeatable",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=16 * 1024 * 1024, help="largest request body accepted"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    logs.add_argument(parser)
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to an ``argparse`` sub-command set; its ``func`` default is ``serve``."""
    parser: argparse.ArgumentParser = subparsers.add_parser("serve", help="run the HTTP API")
    configure(parser)
    parser.set_defaults(func=serve)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Run the server until it is stopped (Ctrl-C / SIGTERM), then close the engine (draining its
    work and giving its lease up)."""
    import os

    try:
        import uvicorn
    except ImportError:
        sys.stderr.write("rattan serve needs the server extra: pip install 'rattan[server]'\n")
        return 2

    from rattan.facade import Engine
    from rattan.server.app import create_app
    from rattan.server.auth import TokenFileError, load_tokens

    try:
        tokens = load_tokens(args.tokens)
    except TokenFileError as exc:
        sys.stderr.write(f"rattan serve: {exc}\n")
        return 2
    store = args.store or os.environ.get("RATTAN_STORE") or None
    engine = Engine(store=store, component_modules=args.component_module)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again under the
    # handlers it found; left at the defaults that kills the process before the engine below is
    # closed (work drained, lease given up). A handler that only notes the signal lets it close.
    previous = _note_signals() if threading.current_thread() is threading.main_thread() else {}
    try:
        app = create_app(engine, tokens, max_body_bytes=args.max_body_bytes)
        # JSON logs: uvicorn's loggers go to the root logger and its JSON formatter (rattan.logs)
        json_logs = (args.log_format or logs.default_format()) == "json"
        if json_logs:
            logs.configure("json", args.log_level.upper())
        # open event streams must not hold a shutdown forever
        config = uvicorn.Config(
            app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5,
            log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
        )  # fmt: skip
        uvicorn.Server(config).run()
    finally:
        engine.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _note_signals() -> dict[int, Any]:
    def note(sig: int, frame: object) -> None:
        pass  # uvicorn already stopped serving: the caller closes the engine and returns

    return {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(prog="rattan serve", description="Run rattan's HTTP API."))
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
