"""What a run trains on: the tf.distribute strategy, mixed precision and XLA, chosen once per process.

    from training.hardware import setup
    hw = setup(cfg.runtime)       # first thing after the config: before TensorFlow touches a device
    with hw.strategy.scope(): ...
    hw.replicas, hw.mixed_precision, hw.jit_compile, hw.is_chief, hw.describe()
    hw.write_dir(out / "checkpoints")   # the run's folder on the chief, a scratch folder elsewhere

``--strategy`` (``cfg.runtime.strategy``):
- ``auto``: ``multiworker`` when TF_CONFIG names a cluster; else ``mirrored`` on GPUs or on a CPU
  split with ``--cpu-replicas``; else ``default``.
- ``default``: one device (tf.distribute's default strategy).
- ``mirrored``: MirroredStrategy over every visible GPU, or over ``--cpu-replicas`` logical CPU
  devices when there is no GPU (the multi-replica path, per-replica batches and the all-reduce,
  run on any machine; no faster than one replica).
- ``multiworker``: MultiWorkerMirroredStrategy. Every machine runs the same command with its own
  TF_CONFIG (``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker",
  "index": i}}``); every worker reads the whole dataset and tf.data shards it by element; the
  chief (``chief`` task, else worker 0) alone writes the run directory; the others write their
  checkpoints to a scratch folder, as TF's multi-worker guide says (every worker takes part in
  saving, only the chief's copy is kept). ``--out`` must be the same folder on a filesystem every
  worker sees, because ``--resume`` restores all workers from the chief's checkpoints.
``--mixed-precision auto`` is on with a GPU, off on the CPU (float16 is emulated there, so
slower). ``--jit-compile auto`` is on with a GPU and ``--no-deterministic``: XLA has no
deterministic MaxPool gradient, so a deterministic run (the default) trains without XLA.

``setup`` writes what it resolved into the config (strategy, replicas, mixed precision, XLA),
so config.json records what the run used. A config error raises HardwareError (a ValueError)
naming the setting.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.config import RuntimeConfig


class HardwareError(ValueError):
    """A strategy, device split or TF_CONFIG that can't be set up."""


@dataclass
class Hardware:
    strategy: object  # a tf.distribute.Strategy
    kind: str  # "default", "mirrored" or "multiworker"
    device: str  # "GPU" or "CPU"
    mixed_precision: bool
    jit_compile: bool
    is_chief: bool = True
    task: str = ""  # "worker 1" in a cluster, "" alone

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def describe(self) -> str:
        where = f", {self.task}{' (chief)' if self.is_chief else ''}" if self.task else ""
        return (
            f"{self.kind} strategy, {self.replicas} replica(s) ({self.device}{where}), mixed precision "
            f"{'on' if self.mixed_precision else 'off'}, XLA {'on' if self.jit_compile else 'off'}"
        )

    def write_dir(self, path: Path) -> Path:
        """Where this process writes what belongs in ``path``: ``path`` itself on the chief; on
        another worker a scratch folder, removed at exit (its copy duplicates the chief's)."""
        if self.is_chief:
            return Path(path)
        scratch = Path(tempfile.mkdtemp(prefix=f"officenet-{self.task.replace(' ', '')}-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        return scratch / Path(path).name


def cluster() -> dict | None:
    """TF_CONFIG parsed, or None when it is unset or names no cluster."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        raise HardwareError(
            f'TF_CONFIG is not JSON ({e}): expected {{"cluster": {{"worker": '
            f'["host:port", ...]}}, "task": {{"type": "worker", "index": 0}}}}'
        ) from None
    if not isinstance(spec, dict) or not spec.get("cluster"):
        return None
    task = spec.get("task") or {}
    if task.get("type") not in ("chief", "worker") or not isinstance(task.get("index"), int):
        raise HardwareError(f'TF_CONFIG\'s task must be {{"type": "chief" or "worker", "index": N}}, got {task!r}')
    return spec


def setup(runtime: RuntimeConfig) -> Hardware:
    """Make the strategy the flags ask for and record the resolved choice in ``runtime``."""
    from training.tfenv import tf

    if runtime.strategy not in ("auto", "default", "mirrored", "multiworker"):
        raise HardwareError(f"--strategy {runtime.strategy!r}: expected auto, default, mirrored or multiworker")
    if runtime.cpu_replicas < 0:
        raise HardwareError(f"--cpu-replicas must be 0 (off) or more, got {runtime.cpu_replicas}")
    gpus = tf.config.list_physical_devices("GPU")  # lists, without initializing the devices
    spec = cluster()
    kind = runtime.strategy
    if kind == "auto":
        kind = "multiworker" if spec else "mirrored" if gpus or runtime.cpu_replicas > 1 else "default"
    if runtime.jit_compile == "on" and runtime.deterministic:
        raise HardwareError(
            "--jit-compile on needs --no-deterministic: XLA has no deterministic "
            "MaxPool gradient (TF 2.21 refuses to compile the train step)"
        )
    if runtime.jit_compile == "on" and kind == "mirrored" and not gpus and runtime.cpu_replicas > 1:
        raise HardwareError(
            "--jit-compile on can't mirror over --cpu-replicas: XLA runs every replica's "
            "step on the first CPU device, away from the others' variables (XLA's known "
            "issue 'tf.Variable on a different device'); use one of the two"
        )
    devices = [f"/gpu:{i}" for i in range(len(gpus))]
    if not gpus and runtime.cpu_replicas:
        devices = _split_cpu(tf, runtime.cpu_replicas)
    on = lambda flag: bool(gpus) if flag == "auto" else flag == "on"  # noqa: E731
    hw = Hardware(
        strategy=None,
        kind=kind,
        device="GPU" if gpus else "CPU",
        mixed_precision=on(runtime.mixed_precision),
        # auto: XLA on a GPU, unless the run must be deterministic (see above).
        jit_compile=on(runtime.jit_compile) and not runtime.deterministic,
    )
    if kind == "multiworker":
        # Created before any other TF op: it configures the collective ops of this process.
        hw.strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = hw.strategy.cluster_resolver
        hw.task = f"{resolver.task_type} {resolver.task_id}" if spec else ""
        hw.is_chief = hw.strategy.extended.should_checkpoint
    elif kind == "mirrored":
        hw.strategy = tf.distribute.MirroredStrategy(devices or None)
    else:
        hw.strategy = tf.distribute.get_strategy()
    runtime.strategy = kind
    runtime.mixed_precision = "on" if hw.mixed_precision else "off"
    runtime.jit_compile = "on" if hw.jit_compile else "off"
    runtime.replicas = hw.replicas
    return hw


def _split_cpu(tf, n: int) -> list[str]:
    """Split the CPU into ``n`` logical devices; only possible before TF initializes its devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != n:
            raise HardwareError(
                f"--cpu-replicas {n}: TensorFlow's devices are already initialized in "
                f"this process; run the trainer in a fresh process "
                f"(python -m training.train ...)"
            ) from None
    return [f"/cpu:{i}" for i in range(n)]
