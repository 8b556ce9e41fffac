"""`make bench`: every stage's benchmark in one go, results in bench/results/<stage>.md and .json.

    python -m bench --data data/office20 --run artifacts/run --bundle artifacts/bundle
    python -m bench --only export server          # a subset
    python -m bench --only train --train-quick    # 1 seed, 8 epochs instead of 3 full seeds
    python -m bench --only abstain --compare-bundle artifacts/bundle-maxsoftmax   # methods side by side

Order matters only for reading: the teacher alone (the ceiling a distilled student aims at;
computes its soft targets once per dataset), training accuracy (trains its own runs), then export (size and
latency of RUN vs BUNDLE), the abstain rule's figures, the HTTP server (serves BUNDLE), and the
APK's on-device runtime.
Each stage's module can also be run alone (`python -m bench.server --help`).
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.record import parse_flags
from bundle.flags import setting

STAGES = ("teacher", "train", "export", "abstain", "server", "android")


@dataclass
class BenchConfig:
    data: str = setting("data/office20", "dataset (for the training benchmark)", metavar="DIR")
    run: str = setting("artifacts/run", "trained run (make train)", metavar="DIR")
    bundle: str = setting("artifacts/bundle", "published bundle (make export)", metavar="DIR")
    compare_bundle: list[str] = setting(
        lambda: [],
        "abstain benchmark: another bundle scored beside --bundle on "
        "the same photos, e.g. the other abstain method's (repeatable)",
        metavar="BUNDLE",
        repeat=True,
    )
    only: list[str] = setting(lambda: list(STAGES), "stages to run", STAGES, metavar="STAGE")
    train_quick: bool = setting(False, "training benchmark: 1 seed, short")


def stage_args(stage: str, a: BenchConfig) -> list[str]:
    return {
        "teacher": ["--data", a.data],
        "train": ["--data", a.data] + (["--quick"] if a.train_quick else []),
        "export": ["--run", a.run, "--bundle", a.bundle],
        "abstain": ["--run", a.run, *[x for b in a.compare_bundle for x in ("--bundle", b)], "--bundle", a.bundle],
        "server": ["--bundle", a.bundle, "--run", a.run],
        "android": ["--bundle", a.bundle],
    }[stage]


def main(argv: list[str] | None = None) -> int:
    a = parse_flags("python -m bench", __doc__, BenchConfig, argv, title="what to measure")
    needs = {"export": a.run, "abstain": a.bundle, "server": a.bundle, "android": a.bundle}
    missing = [
        f"{s} needs {needs[s]} (make train export)" for s in a.only if s in needs and not Path(needs[s]).exists()
    ]
    if missing:
        print("error: " + "; ".join(missing), file=sys.stderr)
        return 2
    failed = []
    for stage in a.only:
        print(f"== bench.{stage}", flush=True)
        start = time.monotonic()
        rc = importlib.import_module(f"bench.{stage}").main(stage_args(stage, a))
        print(f"== bench.{stage}: exit {rc} after {time.monotonic() - start:.0f} s", flush=True)
        if rc:
            failed.append(stage)
    if failed:
        print(f"error: benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
