"""How many CPU cores this process may use, the same way on Linux, macOS and Windows.

Here because every stage sizes thread pools by it (the trainer's helpers, the server's
interpreters, the benchmarks) and ``os.sched_getaffinity`` exists on Linux only.

    from bundle.cpus import usable_cpus
    pool = ThreadPoolExecutor(usable_cpus())
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The process's affinity mask where the OS has one (Linux; a container's cpuset), else every
    core (macOS and Windows have no ``os.sched_getaffinity``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    count = getattr(os, "process_cpu_count", os.cpu_count)()  # 3.13+: affinity-aware everywhere
    return count or 1
