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
from dataclasses import dataclass

from bundle.flags import REQUIRED, add_group, given, setting
from bundle.manifest import BundleError, load_bundle
from server.inference import Classifier
from server.settings import ENV_BUNDLE, ServerSettings


@dataclass
class ServeConfig:
    """What only the command line sets: the bundle and how uvicorn listens."""

    bundle: str = setting(REQUIRED, "bundle directory written by `python -m export`", metavar="DIR", section="model")
    host: str = setting("127.0.0.1", "interface to listen on (0.0.0.0 to let phones on the LAN in)", section="network")
    port: int = setting(8000, "TCP port", section="network")
    log_level: str = setting(
        "info", "uvicorn log level", ("critical", "error", "warning", "info", "debug"), section="network"
    )


def parse_args(argv: list[str] | None) -> tuple[ServeConfig, dict]:
    """(the serve config, the ServerSettings flags given) from the command line."""
    p = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve an officenet bundle over HTTP: POST /classify, GET / (phone page), "
        "/healthz, /readyz, /model, /labels, /docs.",
    )
    add_group(p, "serve", ServeConfig, title="model")
    add_group(p, "settings", ServerSettings, title="server settings")
    args = p.parse_args(argv)
    return ServeConfig(**given(args, "serve")), given(args, "settings")


def main(argv: list[str] | None = None) -> int:
    serve, flags = parse_args(argv)
    try:
        settings = ServerSettings(**flags)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        check_bundle(serve.bundle)
    except BundleError as e:
        print(f"error: cannot serve {serve.bundle}: {e}", file=sys.stderr)
        return 2
    import uvicorn  # only once we know we will serve

    os.environ.update({ENV_BUNDLE: os.path.abspath(serve.bundle), **settings.to_env()})
    uvicorn.run(
        "server.app:from_env",
        factory=True,
        host=serve.host,
        port=serve.port,
        workers=settings.processes,
        log_level=serve.log_level,
    )
    return 0


def check_bundle(path: str) -> None:
    """Everything that would make the app's startup fail, checked with a clear message first."""
    Classifier(load_bundle(path), pool_size=1).close()
