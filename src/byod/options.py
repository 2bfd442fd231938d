"""The sections of the settings model (`IngestSettings.time`, `IngestSettings.clouds`) and
how a settings error is named at an edge.

A module of its own so that both `config` (the model) and `dataset_config` (byod.yaml, whose
`time:` and `clouds:` sections are these models) import it without importing each other.
Import-light: the CLI imports it to answer `--help`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

CloudSource = Literal["option", "user", "mask", "sidecar", "imagery"]
TimeSource = Literal["option", "user", "sidecar", "tag", "name", "written"]
_TIME_GROUPS = {"year", "month", "day", "hour", "minute", "second"}

# The source of its section's `order` that reads each value: a value whose source the order
# leaves out would be dropped without a word, so it is refused (`_refuse_unused`, and
# `config.build_settings` where the value and the order came from different places).
READ_BY = {
    "time": {"datetime": "option", "pattern": "name"},
    "clouds": {"cover": "option", "rule": "mask", "band": "mask"},
}
# `byod ingest`'s option of each key of the sections, for messages that say what to type
# (tests/test_cli_model.py checks them against the command's own options).
COMMAND_LINE = {
    "time.datetime": "--datetime", "time.pattern": "--datetime-pattern",
    "time.order": "--datetime-order", "clouds.cover": "--cloud-cover",
    "clouds.rule": "--cloud-rule", "clouds.band": "--cloud-band", "clouds.order": "--cloud-order",
}  # fmt: skip


class TimeOptions(BaseModel):
    """When each input was acquired: one time for every item, or where to look for it
    (README "Acquisition time"). byod.yaml's `time:` section; `--datetime`,
    `--datetime-pattern`, `--datetime-order` and `--require-datetime` on the command line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    datetime: dt.datetime | None = Field(
        default=None,
        description="Acquisition time of every item: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS with "
        "an optional Z or +HH:MM (UTC if no zone).",
    )
    pattern: str | None = Field(
        default=None,
        description="Regex with named groups year, month, day, hour, minute, second, "
        "tried on file and folder names before the built-in patterns.",
    )
    order: tuple[TimeSource, ...] = Field(
        default=("option", "user", "sidecar", "tag", "name", "written"),
        description="Which time source wins, first to last.",
    )
    require: bool = Field(
        default=False,
        description="Reject inputs with no acquisition time (no_datetime) instead of ingesting "
        "them with datetime null and the period 'acquired up to when first ingested'.",
    )

    @field_validator("datetime", mode="before")
    @classmethod
    def _not_a_number(cls, value: object) -> object:
        # pydantic reads a number as Unix seconds: `datetime: 2021` in byod.yaml (and YAML's
        # `10:00`, the number 600) became 1970-01-01T00:33:41Z, silently.
        number = isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value)
        if isinstance(value, int | float) or number:
            raise ValueError(f"{value!r} is a number, not a date: give YYYY-MM-DD or "
                             "YYYY-MM-DDTHH:MM:SS (UTC if no zone)")  # fmt: skip
        return value

    @field_validator("datetime")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        from byod.temporal import as_utc

        return None if value is None else as_utc(value)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return named_groups(value, required={"year"}, allowed=_TIME_GROUPS)

    @field_validator("order", mode="before")
    @classmethod
    def _some(cls, value: object) -> object:
        _refuse_empty(value, "time")
        return value

    @field_validator("order")
    @classmethod
    def _order(cls, value: tuple[TimeSource, ...]) -> tuple[TimeSource, ...]:
        _refuse_repeated(value)
        return value

    @model_validator(mode="after")
    def _used(self) -> TimeOptions:
        for name, source in READ_BY["time"].items():
            _refuse_unused(getattr(self, name) is not None, name, source, self.order)
        return self


class CloudOptions(BaseModel):
    """How each item's cloud cover is found (README "Cloud cover"). byod.yaml's `clouds:`
    section; `--cloud-cover`, `--cloud-rule`, `--cloud-band` and `--cloud-order` on the
    command line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cover: float | None = Field(
        default=None, ge=0, le=100, description="Cloud cover (percent) of every item."
    )
    rule: str | None = Field(
        default=None,
        description="How to read cloud masks: s2-scl, landsat-qa, fmask, binary, "
        "values:V,... or bits:B,...; default: by the mask's name.",
    )
    band: int | None = Field(
        default=None,
        ge=1,
        description="Band of each input that is its cloud mask, read by the cloud rule "
        "(a band without a rule is noted, not read).",
    )
    order: tuple[CloudSource, ...] = Field(
        default=("option", "user", "mask", "sidecar", "imagery"),
        description="Which cloud source wins, first to last.",
    )

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        from byod.clouds import parse_rule

        if value is not None:
            parse_rule(value)  # raises with the valid choices named
        return value

    @field_validator("order", mode="before")
    @classmethod
    def _some(cls, value: object) -> object:
        _refuse_empty(value, "clouds")
        return value

    @field_validator("order")
    @classmethod
    def _order(cls, value: tuple[CloudSource, ...]) -> tuple[CloudSource, ...]:
        _refuse_repeated(value)
        return value

    @model_validator(mode="after")
    def _used(self) -> CloudOptions:
        # The rule reads cloud masks and the cloud band: both are the `mask` source.
        for name, source in READ_BY["clouds"].items():
            _refuse_unused(getattr(self, name) is not None, name, source, self.order)
        return self


def _refuse_unused(given: bool, name: str, source: str, order: tuple[str, ...]) -> None:
    """Refuse a value that `order` (the sources tried, first to last) never reads."""
    if given and source not in order:
        raise ValueError(f"{name} is given but order ({', '.join(order)}) leaves out "
                         f"'{source}', the source that reads it: add '{source}' to order "
                         f"or remove {name}")  # fmt: skip


# What an empty order of each section would look for (nothing), and how to have what it
# would give: the sources the user sets, with none of the inputs' own read.
_EMPTY_ORDER = {
    "time": ("no time", TimeSource, "the inputs without a time", "the times you give",
             "an input with neither is stored with datetime null"),
    "clouds": ("no cloud cover", CloudSource, "the items without a cloud cover",
               "the covers you give", "an item with neither has no eo:cloud_cover"),
}  # fmt: skip


def _refuse_empty(value: object, section: str) -> None:
    """Refuse an order with no source (`order: []`, `order:`, `--datetime-order ''`): it
    would look for nothing, silently; say how to store what it would, which is a use."""
    if value is None or (isinstance(value, str | list | tuple) and not value):
        nothing, sources, store, yours, then = _EMPTY_ORDER[section]
        raise ValueError(f"is empty, so {nothing} would be looked for: give the sources to try, "
                         f"first to last (each one of {', '.join(get_args(sources))}), or leave "
                         f"it out for all of them; to store {store}, keep only option and user "
                         f"({yours} yourself): {then}")  # fmt: skip


def _refuse_repeated(order: tuple[str, ...]) -> None:
    """Refuse an order (the sources tried, first to last) that names a source twice: a
    mistake (the second place is never reached), whichever place was meant."""
    repeated = [source for source in dict.fromkeys(order) if order.count(source) > 1]
    if repeated:
        names = " and ".join(f"'{source}'" for source in repeated)
        raise ValueError(f"{names} given more than once ({', '.join(order)}): give each "
                         "source once, first to last")  # fmt: skip


# STAC 1.0 and 1.1's schema of `license` (item-spec/json-schema/licensing.json): one word of
# these characters (\w read as ECMA-262 does: ASCII), so `byod validate` refuses `CC BY 4.0`.
LICENSE_PATTERN = r"^[\w\-\.\+]+$"
# SPDX ids of data licenses often written with spaces or words (`CC BY 4.0`, `Apache License
# 2.0`), found by their letters and digits (`_license_key`); https://spdx.org/licenses/.
_SPDX_IDS = ("CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0",
             "CC-BY-NC-ND-4.0", "CC-BY-3.0", "CC-BY-SA-3.0", "CC0-1.0", "Apache-2.0", "MIT",
             "BSD-2-Clause", "BSD-3-Clause", "ODbL-1.0", "ODC-By-1.0", "PDDL-1.0", "MPL-2.0",
             "etalab-2.0", "OGL-UK-3.0", "DL-DE-BY-2.0", "DL-DE-ZERO-2.0")  # fmt: skip


def spdx_license(value: str) -> str:
    """A collection's license as STAC's schema takes it: an SPDX license id (`CC-BY-4.0`)
    or `other` (STAC 1.1: `various` and `proprietary` deprecated, still valid). Raises
    ValueError quoting the schema's rule, with the SPDX id when `value` is a known one
    written otherwise (`CC BY 4.0`, `Apache 2.0`)."""
    if re.fullmatch(LICENSE_PATTERN, value, re.ASCII):
        return value
    rule = (f"{_shown(value)} is no SPDX license id: STAC's collection schema takes one word "
            f"of letters, digits, '_', '-', '.' and '+' ({LICENSE_PATTERN})")  # fmt: skip
    known = {_license_key(spdx): spdx for spdx in _SPDX_IDS}
    if (meant := known.get(_license_key(value))) is not None:
        message = f"{rule}; did you mean '{meant}'?"
    elif re.search(r"\s(AND|OR|WITH)\s", value):
        message = (f"{rule}, so not an SPDX expression with spaces either: give 'other' and "
                   "name the licenses in the description")  # fmt: skip
    else:
        message = (f"{rule}: give the license's SPDX id (https://spdx.org/licenses/, e.g. "
                   "CC-BY-4.0) or 'other'")  # fmt: skip
    raise ValueError(message)


def _license_key(name: str) -> str:
    # `Apache License, Version 2.0`, `CC BY 4.0`, `cc-by-v4.0`: apache20, ccby40, ccby40.
    name = re.sub(r"\b(licen[cs]e|version)\b|\bv(?=\d)", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", name)


def named_groups(value: str | None, required: set[str], allowed: set[str] | None) -> str | None:
    """A regular expression with the named groups a rule needs (and no others, if limited)."""
    if value is None:
        return None
    try:
        groups = set(re.compile(value).groupindex)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if not required <= groups or (allowed is not None and not groups <= allowed):
        limit = f" and only these: {sorted(allowed)}" if allowed else ""
        raise ValueError(f"needs the named groups {sorted(required)}{limit}")
    return value


def setting_problems(
    exc: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """A settings ValidationError as (dotted field path, message) pairs, the message one
    clause as an edge shows it after the option or key it names: pydantic's "Value error, "
    dropped, lower case first, no final full stop; a bad item of a list (`order`) quoted
    first (`'foo': input should be ...`).

    The mistakes most likely in a hand-written byod.yaml get a message of their own that says
    what is accepted instead of pydantic's wording (`_in_words`): an unknown key (the closest
    known one suggested), a section or list given as a single value, a yes/no that is
    neither. `model` is the model `exc` came from, where the known keys and choices are
    looked up; without it those messages leave the lists out."""
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        text = _in_words(error, model)
        if text is None:
            text = clause(error["msg"])
            if any(isinstance(part, int) for part in error["loc"]):
                text = f"{error['input']!r}: {text}"
        problems.append((path, text))
    return problems


def _in_words(error: ErrorDetails, model: type[BaseModel] | None) -> str | None:
    """The message of one of the likely mistakes (see `setting_problems`), else None."""
    kind, loc, value = error["type"], error["loc"], error["input"]
    if kind == "extra_forbidden":  # pydantic: "Extra inputs are not permitted"
        known = _keys(model, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        text = "unknown key" + (f"; did you mean {guess[0]!r}?" if guess else "")
        return text + (f" (known keys: {', '.join(known)})" if known else "")
    if kind in ("model_type", "dict_type"):  # "... a valid dictionary or instance of X"
        known = _keys(model, loc)
        keys = f" ({', '.join(known)})" if known else ""
        if value is None:  # `time:` with nothing under it
            return f"is empty: give some of its keys{keys} or leave it out"
        single = _scalar(value) or isinstance(value, list)
        example = _example(model, loc, [{key: value} for key in known] if single else [])
        return f"should be a mapping of its keys{keys}, not {_shown(value)}{example}"
    if kind in ("tuple_type", "list_type"):  # "Input should be a valid tuple"
        choices = _choices(model, loc)
        each = f" (each one of {', '.join(choices)})" if choices else ""
        if value is None:
            return f"is empty: give a list{each} or leave it out"
        text = f"should be a list{each}"
        if not (_scalar(value) or isinstance(value, dict)):
            return text
        # `order: "sidecar,name"`, the command line's form: its sources, as a list.
        parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else []
        candidates: list[object] = [parts] if choices and isinstance(value, str) else []
        candidates.append([value])
        item = _model_at(model, loc)  # `providers: TU Wien`: a list of mappings
        if isinstance(item, type) and issubclass(item, BaseModel) and _scalar(value):
            candidates += [[{key: value}] for key in item.model_fields]
        example = _example(model, loc, candidates, ": e.g. ")
        unknown = [part for part in parts if choices and part not in choices]
        if unknown and not example:  # `order: sidecar,nmae`: the one that is no source
            guess = difflib.get_close_matches(unknown[0], choices, n=1)
            example = f": {unknown[0]!r} is none of them" + (
                f" (did you mean {guess[0]!r}?)" if guess else "")  # fmt: skip
        return f"{text}, not {_shown(value)}{example}"
    if kind == "bool_parsing":  # "... a valid boolean, unable to interpret input"
        return f"should be true or false, not {_shown(value)}"
    if kind.startswith("datetime_"):  # "... a valid datetime or date, input is too short"
        reason = error["msg"].partition(", ")[2]
        return (f"{_shown(value)} is not a time{f' ({reason})' if reason else ''}: give "
                "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC if no zone)")  # fmt: skip
    if kind == "literal_error":  # the choices named: a likely one added when close
        guess = difflib.get_close_matches(str(value), _expected(error), n=1)
        if guess:
            return f"{value!r}: {clause(error['msg'])} (did you mean {guess[0]!r}?)"
    return None


def _example(
    model: type[BaseModel] | None,
    loc: tuple[int | str, ...],
    candidates: list[object],
    lead: str = ", e.g. ",
) -> str:
    """`lead` and the first of `candidates` (values for the key at `loc`) that the model
    takes there, as YAML writes it; "" if it takes none. Only an example that works is
    shown: the file with it written in is read. A key given by a former name (byod.yaml's
    `datetime:`) is shown with its name (`time: {...}`)."""
    if model is None or not loc:
        return ""
    *above, key = loc
    parent = _model_at(model, tuple(above))
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return ""
    if isinstance(key, int):  # an item of a list (`providers: [TU Wien]`): its own type
        parent, key = _model_at(model, loc), ""
        if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
            return ""
    name = next((n for n, f in parent.model_fields.items() if key in _aliases(f)), key)
    for candidate in candidates:
        try:
            parent.model_validate({key: candidate} if key else candidate)
        except ValidationError as exc:
            # Only what it says of this key counts: a section's other required keys do not
            # (an item of a list is all its own).
            if not key or any(e["loc"][:1] in ((), (key,)) for e in exc.errors()):
                continue
        except (TypeError, ValueError):
            continue
        shown = _shown(candidate)
        return f"{lead}{name}: {shown}" if name != key else f"{lead}{shown}"
    return ""


def _model_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> type | None:
    """The model or type at `loc` (list indexes passed through), None where not a model."""
    found: type | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(found, type) and issubclass(found, BaseModel)):
            return None
        field = next((f for name, f in found.model_fields.items()
                      if part == name or part in _aliases(f)), None)  # fmt: skip
        if field is None:
            return None
        found = _inner(field.annotation)
    return found


def _aliases(field: FieldInfo) -> list[str]:
    # byod.yaml's `datetime:`, the former name of `time:`, is in the error's loc as written.
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    return [choice for choice in choices if isinstance(choice, str)]


def _inner(annotation: Any) -> Any:
    """A field's type with `X | None` and `list[X]` unwrapped to X (a tuple's kept)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _inner(args[0])
    if get_origin(annotation) is list and args:
        return _inner(args[0])
    return annotation


def _keys(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    found = _model_at(model, loc)
    if isinstance(found, type) and issubclass(found, BaseModel):
        return list(found.model_fields)
    return []


def _choices(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The values a list's items may take where they are a Literal (`order`'s sources)."""
    items = [a for a in get_args(_model_at(model, loc)) if a is not Ellipsis]
    if len(items) == 1 and get_origin(items[0]) is Literal:
        return [str(choice) for choice in get_args(items[0])]
    return []


def _expected(error: ErrorDetails) -> list[str]:
    # pydantic names a Literal's choices in its context: "'option', 'user' or 'written'".
    return re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | dt.date)


def _shown(value: object) -> str:
    """A value as YAML writes it: a text in single quotes (`'` doubled, backslashes kept),
    a date or number as it is, a list or mapping in YAML's flow style."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else str(value)


def clause(text: str) -> str:
    """A message as part of a longer line: pydantic's "Value error, " prefix dropped, lower
    case first, no final full stop (an ellipsis "..." kept)."""
    text = text.replace("Value error, ", "")
    if text.endswith(".") and not text.endswith("..."):
        text = text[:-1]
    return text[:1].lower() + text[1:]
