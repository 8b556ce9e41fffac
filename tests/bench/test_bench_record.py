"""bench.record's main shape: flags from a config dataclass, then measure -> results files + printout, or exit 2."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.record import parse_flags, record
from bundle.flags import setting


@dataclass
class Demo:
    results: Path = setting(Path("bench/results"), "results folder", metavar="DIR")
    rounds: int = setting(3, "rounds")


def test_flags_fill_the_config_and_help_shows_the_docstrings_first_paragraph(capsys):
    assert parse_flags("python -m demo", "Demo bench.\n\nMore.", Demo, ["--rounds", "5"]) == Demo(rounds=5)
    with pytest.raises(SystemExit):
        parse_flags("python -m demo", "Demo bench.\n\nMore.", Demo, ["--help"])
    out = capsys.readouterr().out
    assert "Demo bench." in out and "More." not in out and "what to measure, and where" in out


def test_a_result_is_written_as_json_and_markdown_and_printed_once(tmp_path, capsys):
    renders = []

    def render(result: dict) -> str:
        renders.append(result)
        return f"# {result['figure']}\n"

    assert record(tmp_path, "demo", lambda: {"figure": 7}, render) == 0
    assert json.loads((tmp_path / "demo.json").read_text()) == {"figure": 7}
    assert (tmp_path / "demo.md").read_text() == "# 7\n" and capsys.readouterr().out == "# 7\n\n"
    assert len(renders) == 1


def test_an_expected_failure_is_one_error_line_and_exit_2_and_writes_nothing(tmp_path, capsys):
    def measure() -> dict:
        raise ValueError("no bundle at x")

    assert record(tmp_path, "demo", measure, str, errors=(ValueError,)) == 2
    assert capsys.readouterr().err == "error: no bundle at x\n" and not list(tmp_path.iterdir())
    with pytest.raises(KeyError):  # anything else is a bug: its traceback, not an error line
        record(tmp_path, "demo", lambda: {}["x"], str, errors=(ValueError,))
