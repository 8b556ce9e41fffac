"""``python -m server --bundle DIR``: check the bundle, then serve it with uvicorn.

    python -m server --bundle artifacts/bundle --host 0.0.0.0 --port 8000

The bundle is validated (schema, every file's sha256, LiteRT can load the model and it matches
the manifest) before uvicorn starts: a missing, incomplete or modified bundle exits with code 2
and one line naming the problem. Settings reach the uvicorn workers through ``OFFICENET_*``
environment variables (server.settings), read by the ``server.app:from_env`` factory.
"""

from __future__ import annotations

import argparse
import os
import sys

from bundle.manifest import BundleError, load_bundle
from server.inference import Classifier
from server.settings import ENV_BUNDLE, ServerSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = ServerSettings()
    p = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve an officenet bundle over HTTP: POST /classify, GET / (phone page), "
        "/healthz, /readyz, /model, /labels, /docs.",
    )
    g = p.add_argument_group("model")
    g.add_argument("--bundle", required=True, help="bundle directory written by `python -m export`")
    g = p.add_argument_group("network")
    g.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default: %(default)s; 0.0.0.0 to let phones on the LAN in)",
    )
    g.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    g.add_argument(
        "--cors-origins",
        default=d.cors_origins,
        help="origins whose pages may call the API, comma-separated; '' for none "
        "(default: %(default)s, so the phone app's page can use the server)",
    )
    g.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: %(default)s)",
    )
    g = p.add_argument_group("capacity")
    g.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="uvicorn worker processes, each with its own copy of the model; "
        "0 = one per CPU core (default: %(default)s)",
    )
    g.add_argument(
        "--interpreters",
        type=int,
        default=d.interpreters,
        help="LiteRT interpreters (= CPU threads for requests) per process; "
        "0 = CPU cores / workers (default: %(default)s)",
    )
    g.add_argument("--threads", type=int, default=d.threads, help="threads inside one inference (default: %(default)s)")
    g.add_argument(
        "--max-inflight",
        type=int,
        default=d.max_inflight,
        help="requests per process in /classify at once (reading, queued, running); one "
        "more is answered 503 with Retry-After; 0 = 16, or 4 per interpreter if more "
        "(default: %(default)s)",
    )
    g = p.add_argument_group("limits")
    g.add_argument(
        "--max-bytes",
        type=int,
        default=d.max_bytes,
        help="largest request body in bytes, else 413 (default: %(default)s)",
    )
    g.add_argument(
        "--max-pixels",
        type=int,
        default=d.max_pixels,
        help="largest image (width x height) accepted, else 400 before decoding (default: %(default)s)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = ServerSettings(
            max_bytes=args.max_bytes,
            max_pixels=args.max_pixels,
            interpreters=args.interpreters,
            threads=args.threads,
            workers=args.workers,
            max_inflight=args.max_inflight,
            cors_origins=args.cors_origins,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        check_bundle(args.bundle)
    except BundleError as e:
        print(f"error: cannot serve {args.bundle}: {e}", file=sys.stderr)
        return 2
    import uvicorn  # only once we know we will serve

    os.environ.update({ENV_BUNDLE: os.path.abspath(args.bundle), **settings.to_env()})
    uvicorn.run(
        "server.app:from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=settings.processes,
        log_level=args.log_level,
    )
    return 0


def check_bundle(path: str) -> None:
    """Everything that would make the app's startup fail, checked with a clear message first."""
    Classifier(load_bundle(path), pool_size=1).close()
