"""Command lines made from typed config dataclasses: the one pattern every officenet CLI uses.

A setting is one dataclass field whose default, help and choices sit together; its ``--flag``
(the field name with dashes, or ``flag=`` to rename it) is derived, grouped in ``--help`` by
dataclass, like timm's train.py. Lives in ``bundle/`` (pure Python) because every stage's CLI
uses it, the TensorFlow-free server included.

    from dataclasses import dataclass
    from bundle.flags import add_group, apply_flags, setting

    @dataclass
    class ServeConfig:
        port: int = setting(8000, "TCP port")
        log_level: str = setting("info", "uvicorn log level", choices=("info", "debug"))
        reload: bool = setting(False, "restart on code changes")        # --reload / --no-reload

    p = argparse.ArgumentParser()
    add_group(p, "serve", ServeConfig, "network settings")
    args = p.parse_args(["--port", "9000"])
    cfg = apply_flags(ServeConfig(), args, "serve")       # ServeConfig(port=9000, log_level='info', ...)

What the field's annotation and metadata make of its flag:
- ``bool``: ``--x`` / ``--no-x``; a bool renamed ``flag="--no-x"`` is that one switch (sets False).
- ``list[int]``: ``--x 0 1 2`` (one or more values); with ``repeat=True``: ``--x A --x B``.
- ``setting(REQUIRED, ...)``: no default, the flag must be given; build with ``cls(**given(args, prefix))``.
- ``positional=True``: an argument without a flag (``stats ROOT``), named in ``--help`` by its metavar;
  for a ``REQUIRED`` field.
- ``type=positive`` (or any parser of one string): validates the value, argparse's error otherwise.
- ``section="title"``: listed under that ``--help`` heading instead of the dataclass's own group.
- ``hidden=True``: a working flag left out of ``--help`` (a program's own switch, e.g. for the
  subprocess a benchmark starts of itself).

Flags default to ``argparse.SUPPRESS``: the parsed namespace holds only what was typed, so
``apply_flags`` can lay them over defaults or over a saved config (``--resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from dataclasses import field, fields
from pathlib import Path

REQUIRED = dataclasses.MISSING  # setting(REQUIRED, ...): a field without default, a required flag


def setting(
    default,
    help: str,
    choices: tuple | None = None,
    *,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    type=None,
    repeat: bool = False,
    section: str | None = None,
    hidden: bool = False,
    positional: bool = False,
):
    """A dataclass field that carries its command-line flag: help, choices, optional flag name.
    ``cli=False``: a field set by the program (or a dedicated argument), not by its own flag.
    A callable ``default`` (``lambda: [0, 1, 2]``) is a default factory."""
    factory = callable(default) and not inspect.isclass(default)
    kwargs = {"default_factory": default} if factory else {"default": default}
    return field(
        **kwargs,
        metadata={
            "help": help,
            "choices": choices,
            "flag": flag,
            "metavar": metavar,
            "cli": cli,
            "type": type,
            "repeat": repeat,
            "section": section,
            "hidden": hidden,
            "positional": positional,
        },
    )


def positive(text: str) -> int:
    """A ``type=`` for counts: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _kind(annotation) -> tuple[type, bool]:
    """``int | None`` -> (int, False); ``list[Path]`` -> (Path, True). Annotations are strings
    under ``from __future__ import annotations``."""
    t = eval(annotation, {"Path": Path}) if isinstance(annotation, str) else annotation  # noqa: S307 (our own literals)
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if typing.get_origin(t) is list:
        return args[0], True
    if args and typing.get_origin(args[0]) is list:  # list[int] | None
        return typing.get_args(args[0])[0], True
    return (args[0] if args else t), False


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _shown(default) -> str:
    if isinstance(default, list):
        default = " ".join(map(str, default))
    return "" if default is None or default == "" else f" (default: {default})"


def add_group(
    parser: argparse.ArgumentParser, prefix: str, cls: type, description: str | None = None, title: str | None = None
) -> argparse._ArgumentGroup:
    """One ``--help`` group with a flag per field of ``cls`` (and one per ``section``); values land
    at ``prefix.field``."""
    group = parser.add_argument_group(title or f"{prefix} options", description)
    sections = {}
    for f in sorted(fields(cls), key=lambda f: bool(f.metadata.get("section"))):  # own group's flags first
        meta = f.metadata
        if not meta.get("cli", False):
            continue
        section = meta.get("section")
        if section and section not in sections:
            sections[section] = parser.add_argument_group(section)
        into = sections[section] if section else group
        kind, many = _kind(f.type)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        switch_off = kind is bool and flag_name(f).startswith("--no-")  # the default is what it turns off
        common = {
            "dest": f"{prefix}.{f.name}",
            "default": argparse.SUPPRESS,
            "help": argparse.SUPPRESS if meta["hidden"] else meta["help"] + ("" if switch_off else _shown(_default(f))),
        }
        if required and not meta["positional"]:  # a positional is required by being one
            common["required"] = True
        if kind is bool and not many:
            into.add_argument(
                flag_name(f), action="store_false" if switch_off else argparse.BooleanOptionalAction, **common
            )
            continue
        if many and meta["repeat"]:
            common["action"] = "append"  # --x A --x B
        elif many:
            common["nargs"] = "+"  # --x A B
        into.add_argument(
            *([] if meta["positional"] else [flag_name(f)]),
            type=meta["type"] or kind,
            choices=meta["choices"],
            metavar=meta["metavar"] or (None if meta["choices"] else kind.__name__.upper()),
            **common,
        )
    return group


def given(args: argparse.Namespace, prefix: str) -> dict:
    """The flags of group ``prefix`` that were typed, by field name."""
    head = prefix + "."
    return {k[len(head) :]: v for k, v in vars(args).items() if k.startswith(head)}


def apply_flags(base, args: argparse.Namespace, prefix: str):
    """``base`` (a config dataclass) with the typed flags of group ``prefix`` laid over it."""
    return dataclasses.replace(base, **given(args, prefix))
