"""`byod ingest`'s options are typed by the one settings model (issue 12): each option of a
settings field has the field's default, refuses exactly what the model refuses at its bounds
(ge/gt/le), and shows the field's description, whole, in `--help` at 80 columns."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import annotated_types
import pytest
import typer.core
import typer.main
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from typer import _click as click

from byod.cli import _CSV, _NOT_OPTIONS, _PARAMETER, app
from byod.config import IngestSettings, setting_paths

BYOD = str(Path(sys.executable).with_name("byod"))


def _model_field(path: str) -> FieldInfo:
    """The field of a dotted path, found through the model's own annotations."""
    model: type[BaseModel] = IngestSettings
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        model = next(a for a in (annotation, *getattr(annotation, "__args__", ()))
                     if isinstance(a, type) and issubclass(a, BaseModel))  # fmt: skip
    return model.model_fields[name]


def _options() -> dict[str, tuple[FieldInfo, typer.core.TyperOption]]:
    """Each settings path with an `ingest` option: its field and the option click parses."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands["ingest"]
    params = {p.name: p for p in command.params if isinstance(p, typer.core.TyperOption)}
    found = {}
    for path in setting_paths(IngestSettings):
        name = _PARAMETER.get(path, path)
        if path not in _NOT_OPTIONS and name in params:
            found[path] = (_model_field(path), params[name])
    return found


def _bounds(info: FieldInfo) -> dict[str, float]:
    found: dict[str, float] = {}
    for rule in info.metadata:
        for kind in (annotated_types.Ge, annotated_types.Gt, annotated_types.Le,
                     annotated_types.Lt):  # fmt: skip
            if isinstance(rule, kind):
                name = kind.__name__.lower()
                found[name] = getattr(rule, name)
    return found


def test_every_settings_option_is_found() -> None:
    # The ones this file checks are there: a mapping gone wrong would make the rest vacuous.
    options = _options()
    assert {"timeout_s", "max_memory_mb", "clouds.cover", "time.order", "workers",
            "azure.request_timeout_s", "compression", "prune"} <= set(options)  # fmt: skip


def test_each_option_defaults_to_the_models_default() -> None:
    for path, (info, param) in _options().items():
        if info.default_factory is not None:  # workers: the model's factory decides
            assert param.default is None, path
            continue
        expected: Any = info.default
        if path in _CSV:  # a tuple on the model, comma-separated on the command line
            expected = ", ".join(expected)
        assert param.default == expected, path


def _model_accepts(path: str, value: float) -> bool:
    *sections, name = path.split(".")
    given: dict[str, Any] = {name: value}
    for section in reversed(sections):
        given = {section: given}
    try:
        IngestSettings(source="/data", **given)
    except ValidationError:
        return False
    return True


def _cli_accepts(param: typer.core.TyperOption, text: str) -> bool:
    ctx = click.Context(typer.main.get_command(app))
    try:
        param.process_value(ctx, text)
    except typer.BadParameter:
        return False
    return True


@pytest.mark.parametrize("path", sorted(p for p, (i, _) in _options().items() if _bounds(i)))
def test_each_option_refuses_what_the_model_refuses_at_its_bounds(path: str) -> None:
    info, param = _options()[path]
    bounds = _bounds(info)
    number = int if int in (info.annotation, *get_args(info.annotation)) else float
    step = 1 if number is int else 0.0001
    for bound in bounds.values():
        for value in (bound - step, bound, bound + step):
            shown = str(number(value))
            assert _cli_accepts(param, shown) == _model_accepts(path, number(value)), (path, shown)
    # Inclusive bounds are typer's own range (`[x>=512]` in the help); open ones are named
    # at the end of the help in the same form.
    assert param.min == bounds.get("ge")
    assert param.max == bounds.get("le")
    for kind, sign in (("gt", ">"), ("lt", "<")):
        if kind in bounds:
            assert (param.help or "").endswith(f"[x{sign}{bounds[kind]}]"), path


def test_each_option_shows_its_fields_description_whole_at_80_columns() -> None:
    result = subprocess.run([BYOD, "ingest", "--help"], capture_output=True, text=True,
                            env={"COLUMNS": "80", "PATH": ""}, check=True)  # fmt: skip
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    # The panel's borders dropped and its wrapped lines joined: each text reads whole.
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", line) for line in lines)
    text = re.sub(r"\s+", " ", text)
    assert "<int>" not in text and "<bool>" not in text
    for path, (info, param) in _options().items():
        assert info.description, f"{path} has no description to show"
        description = re.sub(r"\s+", " ", info.description)
        assert description in text, path
        assert description in (param.help or ""), path
        if param.default is not None and not param.is_flag:
            assert f"[default: {param.default}]" in text, path


def test_the_option_named_in_settings_messages_is_the_commands_own() -> None:
    """`options.COMMAND_LINE` names the sections' options in messages (`--datetime-order
    option,sidecar,name`): each is the option `byod ingest` parses for that key."""
    from byod.options import COMMAND_LINE

    found = _options()
    for path, flag in COMMAND_LINE.items():
        assert flag in found[path][1].opts, (path, flag)
