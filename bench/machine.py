"""What machine a benchmark ran on: CPU model, cores and the SIMD flags int8 speed depends on.

Every results file prints this next to its figures (int8 kernels are fast with AVX512-VNNI and can
be slower than float with AVX2 alone), so numbers from different machines are never confused.

    from bench.machine import cpu_info, cpu_line
    info = cpu_info()     # {"model": "AMD EPYC ...", "cores": 2, "machine": "x86_64", "avx2": True, ...}
    print(cpu_line(info)) # "CPU: AMD EPYC ... (2 cores, x86_64), avx2: yes, avx512_vnni: yes, avx_vnni: no"
"""
from __future__ import annotations

import os
import platform
import subprocess

FLAGS = ("avx2", "avx512_vnni", "avx_vnni")


def cpu_info() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model": fields.get("Model name", platform.processor() or "unknown").strip(),
            "cores": len(os.sched_getaffinity(0)), "machine": platform.machine(),
            **{f: f in flags for f in FLAGS}}


def cpu_line(info: dict) -> str:
    flags = ", ".join(f"{f}: {'yes' if info.get(f) else 'no'}" for f in FLAGS)
    return f"CPU: {info['model']} ({info['cores']} cores, {info['machine']}), {flags}"
