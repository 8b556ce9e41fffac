"""Serving knobs: one typed dataclass with working defaults, filled from the CLI or the environment.

The CLI (``python -m server``) and a bare ``uvicorn --factory server.app:from_env`` share one
source of truth: the CLI writes the resolved settings into ``OFFICENET_*`` environment variables
and every uvicorn worker process rebuilds them with ``ServerSettings.from_env()``.

    from server.settings import ServerSettings
    s = ServerSettings(max_bytes=5_000_000, interpreters=2)
    s.to_env()   # {"OFFICENET_MAX_BYTES": "5000000", ...}
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

from bundle.cpus import usable_cpus
from bundle.flags import setting
from bundle.images import DEFAULT_MAX_PIXELS

ENV_PREFIX = "OFFICENET_"
ENV_BUNDLE = ENV_PREFIX + "BUNDLE"


@dataclass(frozen=True)
class ServerSettings:
    max_bytes: int = setting(
        10 * 1024 * 1024, "largest request body in bytes, else 413 (counted while it streams in)", section="limits"
    )
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS,
        "largest image (width x height) accepted, else 400 before any decoding (decompression bombs)",
        section="limits",
    )
    interpreters: int = setting(
        0, "LiteRT interpreters (= CPU threads for requests) per process; 0 = CPU cores / workers", section="capacity"
    )
    # 1 keeps cores free for other requests.
    threads: int = setting(1, "threads inside one inference", section="capacity")
    # One process with an interpreter per core is the default: it measured as fast or faster
    # than a process per core here, with one copy of the model (bench/results/server.md).
    workers: int = setting(
        1, "uvicorn worker processes, each with its own copy of the model; 0 = one per CPU core", section="capacity"
    )
    # Bounds memory (each request may hold max_bytes) and queueing. 0 = 16, or 4 per interpreter
    # where that is more: the 16 concurrent clients the serving goals are set at queue (at most
    # 160 MB of bodies at the default max_bytes; on 2 cores about 16 / 2 x 90 ms of wait for
    # phone-sized photos), and bigger machines keep every core fed.
    max_inflight: int = setting(
        0,
        "requests per process in /classify at once (reading, queued, running); one more "
        "is answered 503 with Retry-After; 0 = 16, or 4 per interpreter if more",
        section="capacity",
    )
    # The phone app's page is another origin; the API uses no cookies, so "*" exposes nothing.
    cors_origins: str = setting(
        "*",
        "origins whose pages may call the API, comma-separated; '' for none (the "
        "default '*' lets the phone app's page use the server)",
        section="access",
    )

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "str":
                continue
            low = 0 if f.name in ("interpreters", "workers", "max_inflight") else 1
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{f.name} must be an integer >= {low}, got {value!r}")

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def processes(self) -> int:
        """uvicorn worker processes to run."""
        return self.workers or usable_cpus()

    @property
    def pool_size(self) -> int:
        """Interpreters (and CPU worker threads) each process runs."""
        return self.interpreters or max(1, usable_cpus() // self.processes)

    @property
    def inflight_limit(self) -> int:
        """Requests each process admits to /classify at once."""
        return self.max_inflight or max(16, 4 * self.pool_size)

    def to_env(self) -> dict[str, str]:
        return {ENV_PREFIX + k.upper(): str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, environ=os.environ) -> ServerSettings:
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and f.type == "str":
                values[f.name] = raw
            elif raw is not None:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX + f.name.upper()}={raw!r} is not an integer") from None
        return cls(**values)
