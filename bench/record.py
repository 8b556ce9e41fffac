"""Recording a benchmark: its flags, the machine it ran on, and its results files.

Every results file prints the CPU next to its figures (int8 kernels are fast with AVX512-VNNI and
can be slower than float with AVX2 alone), so numbers from different machines are never confused.

    from bench.record import cpu_info, cpu_line, parse_flags, record, write_results
    info = cpu_info()     # {"model": "AMD EPYC ...", "cores": 2, "machine": "x86_64", "avx2": True, ...}
    print(cpu_line(info)) # "CPU: AMD EPYC ... (2 cores, x86_64), avx2: yes, avx512_vnni: yes, avx_vnni: no"
    write_results("bench/results", "server", result_dict, markdown_text)   # server.json + server.md

A benchmark's main is its flags, then one ``record`` call:

    def main(argv=None) -> int:
        a = parse_flags("python -m bench.teacher", __doc__, BenchTeacherConfig, argv)
        return record(a.results, "teacher", lambda: measure(a), render, errors=(TeacherError, DatasetError))
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bundle.atomic import write_bytes_atomic, write_json_atomic
from bundle.cpus import usable_cpus
from bundle.flags import add_group, given

Config = TypeVar("Config")

FLAGS = ("avx2", "avx512_vnni", "avx_vnni")


def cpu_info() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {
        "model": fields.get("Model name", platform.processor() or "unknown").strip(),
        "cores": usable_cpus(),
        "machine": platform.machine(),
        **{f: f in flags for f in FLAGS},
    }


def cpu_line(info: dict) -> str:
    flags = ", ".join(f"{f}: {'yes' if info.get(f) else 'no'}" for f in FLAGS)
    return f"CPU: {info['model']} ({info['cores']} cores, {info['machine']}), {flags}"


def write_results(folder: str | Path, stage: str, result: dict, markdown: str) -> None:
    """``<stage>.json`` (every figure) and ``<stage>.md`` (the table quoted in the README)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / f"{stage}.json", result)
    write_bytes_atomic(folder / f"{stage}.md", markdown.encode())


def parse_flags(
    prog: str,
    doc: str,
    cls: type[Config],
    argv: list[str] | None,
    title: str = "what to measure, and where",
) -> Config:
    """A benchmark's settings: the flags of the config dataclass ``cls`` (bundle.flags) parsed from
    ``argv``, ``--help`` headed by the first paragraph of ``doc`` (the module's docstring)."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    add_group(p, "bench", cls, title=title)
    return cls(**given(p.parse_args(argv), "bench"))


def record(
    folder: str | Path,
    stage: str,
    measure: Callable[[], dict],
    render: Callable[[dict], str],
    errors: tuple[type[Exception], ...] = (),
) -> int:
    """A benchmark's run, as an exit code: ``measure()``, then ``<stage>.json`` and ``<stage>.md``
    (``render`` of the result) written and the markdown printed: 0. An expected failure (one of
    ``errors``) prints one ``error:`` line instead: 2."""
    try:
        result = measure()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    markdown = render(result)
    write_results(folder, stage, result, markdown)
    print(markdown)
    return 0
