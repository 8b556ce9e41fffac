"""Training on several machines for real: two worker processes on 127.0.0.1 ports with TF_CONFIG
train one run with MultiWorkerMirroredStrategy; only the chief writes the run directory; after a
worker is killed (kill -9) both resume from the chief's checkpoints; the result loads and exports.

Both workers get the same --out, as machines sharing a filesystem do (``--resume`` restores every
worker from the chief's checkpoints). The test prints what the kill cost, for the report.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from recipes import SMOKE_EXPORT_FLAGS, TINY_TRAIN_FLAGS

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3
FLAGS = [
    *TINY_TRAIN_FLAGS[: TINY_TRAIN_FLAGS.index("--epochs")],
    "--epochs",
    str(EPOCHS),
    *TINY_TRAIN_FLAGS[TINY_TRAIN_FLAGS.index("--epochs") + 2 :],
]
RUN_FILES = {
    "config.json",
    "history.csv",
    "model.keras",
    "preprocess.json",
    "metrics.json",
    "curves.png",
    "confusion.png",
    "filters.png",
    "checkpoints",
}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(data: Path, run: Path, ports: list[int], logs: Path, *extra: str) -> list[subprocess.Popen]:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(len(ports)):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        env = {
            **os.environ,
            "TF_USE_LEGACY_KERAS": "1",
            "PYTHONPATH": str(REPO),
            "TF_CONFIG": tf_config,
            "PYTHONUNBUFFERED": "1",
        }
        log = open(logs / f"worker{i}.log", "a")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "training.train", "--data", str(data), "--out", str(run), *FLAGS, *extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def wait(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(max(1.0, deadline - time.monotonic()))
    return [p.returncode for p in procs]


def history_epochs(run: Path) -> list[int]:
    path = run / "history.csv"
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]] if path.is_file() else []


@pytest.mark.slow
def test_two_workers_train_resume_after_a_worker_is_killed_and_the_chiefs_run_exports(tiny_dataset, tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    procs = start_workers(tiny_dataset, run, free_ports(2), logs)
    try:
        # Kill worker 1 as soon as the chief has finished (and checkpointed) epoch 1.
        deadline = time.monotonic() + 900
        while not (run / "checkpoints" / "checkpoint").is_file() and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), (logs / "worker0.log").read_text()[-3000:]
            time.sleep(0.2)
        assert (run / "checkpoints" / "checkpoint").is_file(), "no checkpoint from the chief"
        procs[1].send_signal(signal.SIGKILL)
        killed_at, epochs_done = time.monotonic(), history_epochs(run)
        # The chief can't finish an epoch without its peer: it fails or hangs; give it a minute.
        try:
            chief_rc = procs[0].wait(60)
        except subprocess.TimeoutExpired:
            chief_rc = None
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
        chief_noticed = time.monotonic() - killed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert history_epochs(run) == epochs_done and 1 <= len(epochs_done) < EPOCHS
    if chief_rc is not None:  # it noticed the dead peer: one clear error, no traceback
        first_run = (logs / "worker0.log").read_text()
        assert chief_rc == 2 and "error: a worker of the cluster stopped" in first_run, first_run[-3000:]
        assert "Traceback" not in first_run

    t0 = time.monotonic()
    resumed = start_workers(tiny_dataset, run, free_ports(2), logs, "--resume")
    try:
        assert wait(resumed, 900) == [0, 0], (logs / "worker0.log").read_text()[-3000:] + (
            logs / "worker1.log"
        ).read_text()[-3000:]
    finally:
        for p in resumed:
            if p.poll() is None:
                p.kill()
    chief_log, other_log = (logs / "worker0.log").read_text(), (logs / "worker1.log").read_text()
    print(
        f"\nkilled worker 1 after epoch {epochs_done[-1]}; the chief "
        + (
            f"exited (rc {chief_rc}) {chief_noticed:.0f} s later"
            if chief_rc is not None
            else f"was still waiting {chief_noticed:.0f} s later (killed)"
        )
        + f"; resumed from epoch {epochs_done[-1]}, finished in {time.monotonic() - t0:.0f} s"
    )

    assert f"resumed from {run / 'checkpoints'}/ckpt-{epochs_done[-1]}" in chief_log
    assert f"resumed from {run / 'checkpoints'}/ckpt-{epochs_done[-1]}" in other_log
    assert "hardware: multiworker strategy, 2 replica(s) (CPU, worker 0 (chief))" in chief_log
    assert "hardware: multiworker strategy, 2 replica(s) (CPU, worker 1)" in other_log
    assert "worker 1: training done; the chief saves the model and metrics" in other_log
    # One history, every epoch once, written by the chief alone; nothing else in the run.
    assert history_epochs(run) == list(range(1, EPOCHS + 1))
    assert {p.name for p in run.iterdir()} - {"logs"} == RUN_FILES
    runtime = json.loads((run / "config.json").read_text())["runtime"]
    assert (runtime["strategy"], runtime["replicas"]) == ("multiworker", 2)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == EPOCHS and metrics["test"]["top1"] > 1.5 / 20

    from export.cli import main as export_main

    bundle = tmp_path / "bundle"
    assert export_main(["--run", str(run), "--out", str(bundle), *SMOKE_EXPORT_FLAGS]) == 0
    assert (bundle / "manifest.json").is_file()
