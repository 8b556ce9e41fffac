"""bundle.flags: every kind of setting becomes the flag it promises, and only typed flags are given."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundle.flags import REQUIRED, add_group, apply_flags, given, positive, setting


@dataclass(kw_only=True)
class Demo:
    out: str = setting(REQUIRED, "where to write", metavar="DIR")
    port: int = setting(8000, "TCP port")
    level: str = setting("info", "log level", ("info", "debug"))
    fast: bool = setting(False, "go fast")
    local: bool = setting(True, "ignore local copies", flag="--no-local")
    name: str = setting("x", "the model's name", flag="--model-name")
    seeds: list[int] = setting(lambda: [0, 1, 2], "one run per seed")
    bundles: list[Path] = setting(lambda: [Path("b")], "a bundle (repeat)", flag="--bundle", repeat=True)
    workers: int = setting(4, "threads", type=positive, section="machine")
    hidden: str = setting("", "set by the program", cli=False)
    internal: int | None = setting(None, "the program's own switch", hidden=True)


@dataclass
class Stats:
    root: str = setting(REQUIRED, "dataset folder", metavar="ROOT", positional=True)
    samples: int = setting(8, "photos per class")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_group(p, "demo", Demo, title="demo options")
    return p.parse_args(argv)


def test_defaults_are_not_given_and_a_config_built_from_flags_takes_the_field_defaults():
    args = parse(["--out", "o"])
    assert given(args, "demo") == {"out": "o"}
    assert Demo(**given(args, "demo")) == Demo(out="o")


def test_every_kind_of_flag_parses_to_its_field():
    args = parse(
        [
            "--out",
            "o",
            "--port",
            "9000",
            "--level",
            "debug",
            "--fast",
            "--no-local",
            "--model-name",
            "m",
            "--seeds",
            "3",
            "4",
            "--bundle",
            "a",
            "--bundle",
            "c",
            "--workers",
            "2",
            "--internal",
            "5",
        ]
    )
    assert given(args, "demo") == {
        "out": "o",
        "port": 9000,
        "level": "debug",
        "fast": True,
        "local": False,
        "name": "m",
        "seeds": [3, 4],
        "bundles": [Path("a"), Path("c")],
        "workers": 2,
        "internal": 5,
    }
    assert given(parse(["--out", "o", "--no-fast"]), "demo")["fast"] is False


def test_apply_flags_lays_typed_flags_over_a_base_and_keeps_the_rest():
    base = Demo(out="saved", port=1, seeds=[7], hidden="kept")
    cfg = apply_flags(base, parse(["--out", "saved", "--seeds", "8", "9"]), "demo")
    assert cfg == Demo(out="saved", port=1, seeds=[8, 9], hidden="kept")


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--port", "1"], "the following arguments are required: --out"),
        (["--out", "o", "--level", "loud"], "invalid choice: 'loud'"),
        (["--out", "o", "--workers", "0"], "must be at least 1, got 0"),
        (["--out", "o", "--workers", "two"], "expected a whole number, got 'two'"),
        (["--out", "o", "--port", "x"], "invalid int value: 'x'"),
        (["--out", "o", "--seeds"], "expected at least one argument"),
        (["--out", "o", "--hidden", "h"], "unrecognized arguments: --hidden"),
    ],
)
def test_bad_flags_are_refused_naming_the_problem(argv, problem, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert problem in capsys.readouterr().err


def test_help_groups_flags_and_shows_defaults_only_where_they_mean_something():
    p = argparse.ArgumentParser()
    add_group(p, "demo", Demo, title="demo options")
    text = " ".join(p.format_help().split())  # unwrapped
    assert text.index("demo options:") < text.index("--port INT TCP port (default: 8000)") < text.index("machine:")
    assert text.index("machine: --workers INT threads (default: 4)") > text.index("--bundle")
    assert "--fast, --no-fast go fast (default: False)" in text
    assert "--no-local ignore local copies --model-name" in text  # a switch-off shows no default
    assert "--out DIR where to write --port" in text  # required: no default
    assert "one run per seed (default: 0 1 2)" in text  # a factory's value, as typed
    assert "--level {info,debug} log level (default: info)" in text
    assert "--bundle PATH a bundle (repeat) (default: b)" in text
    assert "--hidden" not in text
    assert "--internal" not in text  # a working flag, out of --help


def test_a_positional_setting_is_a_required_argument_named_by_its_metavar(capsys):
    p = argparse.ArgumentParser()
    add_group(p, "stats", Stats)
    assert Stats(**given(p.parse_args(["d", "--samples", "3"]), "stats")) == Stats(root="d", samples=3)
    assert "stats options: ROOT dataset folder --samples" in " ".join(p.format_help().split())
    with pytest.raises(SystemExit):
        p.parse_args(["--samples", "3"])
    assert "the following arguments are required: ROOT" in capsys.readouterr().err
