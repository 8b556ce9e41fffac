"""Import TensorFlow the one way this project allows: Keras 2 (tf_keras), quiet logs.

tfmot refuses Keras 3 objects, so ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first
imported anywhere in the process. Every module that needs TF imports it from here:

    from training.tfenv import tf, keras

On a machine without an NVIDIA driver, TensorFlow's CUDA build still probes for one and says so
on stderr ("Could not find cuda drivers", "failed call to cuInit ... (303)"): absl prints those
before its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them, and they read like a
failure on every CPU-only command. While TensorFlow loads and finds its devices, stderr goes to a
temporary file; those lines are dropped and everything else is written back. With a driver
present (a GPU machine) nothing is filtered: there a CUDA complaint is real.
"""

import contextlib
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What TensorFlow prints probing for CUDA where there is none (measured with TF 2.21 on CPU).
CUDA_PROBE_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
)


def no_nvidia_driver() -> bool:
    """True on Linux without the NVIDIA kernel driver (elsewhere TF has no CUDA probe)."""
    return sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia/version")


@contextlib.contextmanager
def without_cuda_probe_noise():
    """Drop CUDA_PROBE_NOISE lines from what the block writes to file descriptor 2."""
    if not no_nvidia_driver():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not CUDA_PROBE_NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


with without_cuda_probe_noise():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    # The cuInit probe runs when devices are first listed: do it here, inside the filter.
    # (Listing physical devices does not start the runtime, so logical device setup still works.)
    tf.config.list_physical_devices()

__all__ = ["tf", "keras"]
