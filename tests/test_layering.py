"""Data flows one way: training -> export -> bundle contract -> server / android_demo.

Every import in a stage's code (function-level ones included) is read from its syntax tree and
checked against the stages it may use; bundle/ (the contract every consumer reads) and server/
must also never pull TensorFlow in, which a real import in a fresh interpreter checks.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What each stage must not import: the stages after it (and bench, which measures them all).
FORBIDDEN = {
    "training": {"export", "server", "android_demo", "bench"},
    "export": {"server", "android_demo", "bench"},
    "bundle": {"training", "export", "server", "android_demo", "bench", "tensorflow", "tf_keras", "keras"},
    "server": {"training", "export", "android_demo", "bench", "tensorflow", "tf_keras", "keras"},
    "android_demo": {"training", "export", "server", "bench", "tensorflow", "tf_keras", "keras"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(stage: str, root: Path = REPO) -> list[str]:
    return [
        f"{path.relative_to(root)} imports {name}"
        for path in sorted((root / stage).rglob("*.py"))
        if "node_modules" not in path.parts
        for name in sorted(imported_packages(path) & FORBIDDEN[stage])
    ]


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_a_stage_imports_only_the_stages_before_it(stage):
    assert violations(stage) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "late.py").write_text(
        "def f():\n    from training.run import load_run\n    import tensorflow\n"
    )
    assert violations("bundle", tmp_path) == ["bundle/late.py imports tensorflow", "bundle/late.py imports training"]


def test_the_bundle_contract_loads_without_tensorflow():
    modules = sorted(f"bundle.{p.stem}" for p in (REPO / "bundle").glob("*.py") if p.stem != "__init__")
    code = (
        f"import sys, importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'training'))\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
