"""The Python versions officenet claims (pyproject's requires-python, the Makefile's PYTHONS) are
exactly those the locked requirements resolve for with binary wheels only (pip's resolver, dry run).
Needs the package index; skipped, saying so, when pip cannot reach it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# pip's words when the index is unreachable (as opposed to a resolution that is impossible)
OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Could not fetch URL|Max retries exceeded|ProxyError|Network is unreachable"
)


def claimed() -> list[str]:
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec).groups()
    return [f"3.{m}" for m in range(int(low), int(high))]


def resolves(version: str, tmp: Path) -> bool:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--python-version",
            version,
            "--only-binary=:all:",
            "--target",
            str(tmp / version),
            "-r",
            "requirements/dev.txt",
            "-c",
            "requirements/constraints.txt",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if OFFLINE.search(proc.stderr):
        pytest.skip(f"pip cannot reach the package index (offline?): {OFFLINE.search(proc.stderr)[0]}")
    assert proc.returncode == 0 or "ResolutionImpossible" in proc.stderr or "No matching distribution" in proc.stderr, (
        proc.stderr[-2000:]
    )
    return proc.returncode == 0


def test_makefile_tries_the_claimed_versions():
    line = next(x for x in (REPO / "Makefile").read_text().splitlines() if x.startswith("PYTHONS "))
    assert line.split(":=")[1].split() == [f"python{v}" for v in claimed()]


@pytest.mark.slow
def test_locked_requirements_resolve_for_exactly_the_claimed_versions(tmp_path):
    versions = claimed()
    assert versions[0] == "3.11" and len(versions) >= 2
    for v in versions:
        assert resolves(v, tmp_path), f"the lock does not resolve for Python {v}, which pyproject claims"
    # the bounds are tight: one version below and one above do not resolve (no wheels)
    below, above = f"3.{int(versions[0][2:]) - 1}", f"3.{int(versions[-1][2:]) + 1}"
    assert not resolves(below, tmp_path) and not resolves(above, tmp_path)
