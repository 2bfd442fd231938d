"""Settings refused in the user's words (newcomer faults left from the last session): a
source named twice in an order, byod.yaml's `datetime:` beside `time:`, and the mistakes
most likely in a hand-written byod.yaml (a misspelt key, a single value where a section or
a list belongs, a run's setting in the dataset's file) said with what is accepted instead
of pydantic's "Extra inputs are not permitted" / "Input should be a valid ..."."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import Result

from byod.config import IngestSettings
from byod.options import CloudOptions, TimeOptions
from tests.conftest import ramp, write_geotiff
from tests.readback import item_files
from tests.test_cli_manners import invoke, one_error_line

UTM: dict[str, Any] = {"crs": "EPSG:32633", "transform": (10, 0, 500000, 0, -10, 5000000)}
PYDANTIC = ("extra inputs", "input should be a valid", "instance of", "Value error")


def _ingest(tmp_path: Path, yaml: str | None, *args: str) -> Result:
    """`byod ingest` of one dated raster (`a_20240101.tif`), with `yaml` as its byod.yaml."""
    source = tmp_path / "src"
    if not (source / "a_20240101.tif").exists():
        write_geotiff(source / "a_20240101.tif", ramp(16, 16), **UTM)
    config = source / "byod.yaml"
    config.unlink(missing_ok=True)
    if yaml is not None:
        config.write_text(yaml)
    return invoke("ingest", str(source), "--catalog", str(tmp_path / "c"), "--target",
                  str(tmp_path / "d"), "--quiet", *args)  # fmt: skip


def _refused(tmp_path: Path, yaml: str | None, *args: str) -> str:
    """The one error line of a run refused as a usage error, nothing written."""
    result = _ingest(tmp_path, yaml, *args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert not any(words in line for words in PYDANTIC), line
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
    return line


def _item(tmp_path: Path) -> dict[str, object]:
    item = json.loads(item_files(tmp_path / "c", "src")["a_20240101"].read_text())
    properties: dict[str, object] = item["properties"]
    return properties


@pytest.mark.parametrize(
    ("yaml", "args", "where", "repeated"),
    [
        ("time: {order: [name, name]}\n", [], "byod.yaml: time.order: ", "'name'"),
        ("clouds: {order: [sidecar, mask, sidecar]}\n", [], "byod.yaml: clouds.order: ",
         "'sidecar'"),
        (None, ["--datetime-order", "name,sidecar,name"], "byod ingest: --datetime-order: ",
         "'name'"),
        (None, ["--cloud-order", "mask,mask,option,option"], "byod ingest: --cloud-order: ",
         "'mask' and 'option'"),
        ("time: {order: [sidecar, tag]}\n", ["--datetime-order", "tag,tag"],
         "byod ingest: --datetime-order: ", "'tag'"),
    ],
    ids=["yaml-time", "yaml-clouds", "cli-time", "cli-clouds-two", "cli-over-yaml"],
)  # fmt: skip
def test_a_source_named_twice_in_an_order_is_refused(
    tmp_path: Path, yaml: str | None, args: list[str], where: str, repeated: str
) -> None:
    # Was accepted: the second place of a source is never reached, so whichever was meant,
    # the order does not say what the user thinks.
    line = _refused(tmp_path, yaml, *args)
    assert where in line, line
    assert f"{repeated} given more than once" in line, line
    # The same order with each source once is taken.
    assert _ingest(tmp_path, None, "--datetime-order", "name,sidecar").exit_code == 0


def test_the_models_refuse_a_repeated_source_too() -> None:
    """The flow and Python callers build the same models: the same refusal, on `order`."""
    with pytest.raises(ValidationError) as time_error:
        IngestSettings(source="/data", time=TimeOptions(order=("tag", "name", "tag")))
    assert time_error.value.errors()[0]["loc"] == ("order",)
    with pytest.raises(ValidationError):
        CloudOptions(order=("imagery", "imagery"))
    assert TimeOptions(order=("tag", "name")).order == ("tag", "name")


def test_datetime_beside_time_in_byod_yaml_says_it_is_the_former_name(tmp_path: Path) -> None:
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, "datetime: {pattern: '(?P<year>\\d{4})'}\ntime: {require: true}\n")
    assert line == (f"error: {config}: 'datetime:' is the former name of 'time:' and only one "
                    "may be given: move its keys under 'time:'")  # fmt: skip
    # Each alone is read, `datetime:` as `time:`.
    assert _ingest(tmp_path, "datetime: {require: true}\n").exit_code == 0


@pytest.mark.parametrize(
    ("yaml", "key", "meant"),
    [
        ("tiem: {require: true}\n", "tiem", "time"),
        ("time: {requre: true}\n", "time.requre", "require"),
        ("datetime: {requre: true}\n", "datetime.requre", "require"),
        ("clouds: {rules: fmask}\n", "clouds.rules", "rule"),
        ("licence: MIT\n", "licence", "license"),
        ("providers: [{name: Lab, role: [producer]}]\n", "providers.role", "roles"),
        ("group: {patern: '(?P<scene>a)_(?P<band>\\d+)'}\n", "group.patern", "pattern"),
    ],
    ids=["section", "time-key", "former-time-key", "clouds-key", "top-key", "provider-key",
         "group-key"],
)  # fmt: skip
def test_a_misspelt_key_is_named_with_the_key_meant(
    tmp_path: Path, yaml: str, key: str, meant: str
) -> None:
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, yaml)
    assert line.startswith(f"error: {config}: {key}: unknown key; did you mean '{meant}'? "
                           "(known keys: "), line  # fmt: skip
    # The key suggested is the one byod reads: the file with it is taken.
    wrong = key.rsplit(".", 1)[-1]
    fixed = re.sub(rf"\b{wrong}:", f"{meant}:", yaml)
    result = _ingest(tmp_path, fixed)
    assert result.exit_code == 0, result.output


def test_an_unknown_key_with_nothing_close_lists_the_known_ones(tmp_path: Path) -> None:
    line = _refused(tmp_path, "clouds: {cover: 5, xyzzy: 1}\n")
    assert line.endswith("clouds.xyzzy: unknown key (known keys: cover, rule, band, order)")


def test_a_runs_setting_in_byod_yaml_says_where_it_belongs(tmp_path: Path) -> None:
    # `--workers` exists, so `workers: 2` in byod.yaml looks right; it is the machine's, not
    # the dataset's.
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, "workers: 2\n")
    assert line.startswith(f"error: {config}: workers: a setting of the run, not of the "
                           "dataset: give it on the command line"), line  # fmt: skip
    assert _ingest(tmp_path, None, "--workers", "2").exit_code == 0


@pytest.mark.parametrize(
    ("yaml", "key", "accepted", "fix", "expected"),
    [
        ("time: 2021-03-04\n", "time", "(datetime, pattern, order, require)", "time: EG",
         ("datetime", "2021-03-04T00:00:00Z")),
        ("time: {order: name}\n", "time.order",
         "(each one of option, user, sidecar, tag, name, written)", "time: {order: EG}",
         ("byod:datetime_source", "name:20240101")),
        ("clouds: 12.5\n", "clouds", "(cover, rule, band, order)", "clouds: EG",
         ("eo:cloud_cover", 12.5)),
        ("keywords: ndvi\n", "keywords", "", "keywords: EG", None),
    ],
    ids=["time-as-a-date", "order-as-one-source", "clouds-as-a-number", "keywords-as-one"],
)  # fmt: skip
def test_a_single_value_where_a_section_or_list_belongs_gets_an_example_that_works(
    tmp_path: Path,
    yaml: str,
    key: str,
    accepted: str,
    fix: str,
    expected: tuple[str, object] | None,
) -> None:
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, yaml)
    assert line.startswith(f"error: {config}: {key}: should be a "), line
    assert accepted in line, line
    example = re.search(r"e\.g\. (\S.*)$", line)
    assert example is not None, line
    # The example, written in the file as the message shows it, is read as meant.
    result = _ingest(tmp_path, fix.replace("EG", example.group(1)) + "\n")
    assert result.exit_code == 0, result.output
    if expected is not None:
        name, value = expected
        assert _item(tmp_path)[name] == value
    else:
        collection = json.loads((tmp_path / "c" / "src" / "collection.json").read_text())
        assert collection["keywords"] == ["ndvi"]


def test_an_empty_section_and_a_yes_no_that_is_neither_say_what_is_accepted(
    tmp_path: Path,
) -> None:
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, "time:\n  # require: true\n")
    assert line == (f"error: {config}: time: is empty: give some of its keys (datetime, "
                    "pattern, order, require) or leave it out")  # fmt: skip
    line = _refused(tmp_path, "time: {require: maybe}\n")
    assert line == f"error: {config}: time.require: should be true or false, not 'maybe'"


def test_a_source_not_known_suggests_the_close_one(tmp_path: Path) -> None:
    line = _refused(tmp_path, None, "--datetime-order", "sidecar,nmae")
    assert line == ("error: byod ingest: --datetime-order: 'nmae': input should be 'option', "
                    "'user', 'sidecar', 'tag', 'name' or 'written' (did you mean 'name'?) "
                    "(see byod ingest --help)")  # fmt: skip


@pytest.mark.parametrize(
    ("yaml", "line"),
    [
        ("time: {datetime: 2021/05/01}\n", "time.datetime: '2021/05/01' is not a time (invalid "
         "date separator, expected `-`): give YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC if no "
         "zone)"),
        ("time: {datetime: yesterday}\n", "time.datetime: 'yesterday' is not a time (input is "
         "too short): give YYYY-MM-DD"),
        ("clouds: {order: }\n", "clouds.order: is empty, so no cloud cover would be looked "
         "for: give the sources to try, first to last (each one of option, user, mask, "
         "sidecar, imagery), or leave it out"),
    ],
    ids=["date-with-slashes", "a-word", "empty-order"],
)  # fmt: skip
def test_a_time_or_order_in_the_wrong_form_says_the_form(
    tmp_path: Path, yaml: str, line: str
) -> None:
    config = tmp_path / "src" / "byod.yaml"
    shown = _refused(tmp_path, yaml)
    assert shown.startswith(f"error: {config}: {line}"), shown


# --- second round (newcomer N4: F7, F8, F3, F6) ----------------------------------------------


def _example_of(line: str) -> str:
    example = re.search(r"e\.g\. (\S.*)$", line)
    assert example is not None, line
    return example.group(1)


@pytest.mark.parametrize(
    ("yaml", "key", "example"),
    [
        ('time: {order: "sidecar,name"}\n', "time.order", "['sidecar', 'name']"),
        ("providers: TU Wien\n", "providers", "[{name: 'TU Wien'}]"),
        ("datetime: 2021-05-01\n", "datetime", "time: {datetime: 2021-05-01}"),
    ],
    ids=["order-in-the-command-lines-form", "provider-as-a-name", "former-time-as-a-date"],
)  # fmt: skip
def test_each_example_written_back_is_read(
    tmp_path: Path, yaml: str, key: str, example: str
) -> None:
    # Newcomer F7: these examples were ['sidecar,name'], ['TU Wien'] and
    # `{datetime: 2021-05-01}` under `datetime:`, each refused again once written in.
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, yaml)
    assert line.startswith(f"error: {config}: {key}: should be a "), line
    assert _example_of(line) == example
    # The key's value replaced by the example (the example of the former `datetime:` names
    # its section itself).
    fixed = example if example.startswith("time:") else yaml.split(":")[0] + ": " + example
    if key == "time.order":
        fixed = f"time: {{order: {example}}}"
    result = _ingest(tmp_path, fixed + "\n")
    assert result.exit_code == 0, result.output
    item = _item(tmp_path)
    collection = json.loads((tmp_path / "c" / "src" / "collection.json").read_text())
    if key == "time.order":  # no sidecar: the name's day (a_20240101)
        assert item["byod:datetime_source"] == "name:20240101"
        assert item["start_datetime"] == "2024-01-01T00:00:00Z"
    elif key == "providers":
        assert [p["name"] for p in collection["providers"]] == ["TU Wien"]
    else:  # `time.datetime`, an instant: the date's midnight, UTC, over the name's day
        assert item["datetime"] == "2021-05-01T00:00:00Z"
        assert item["byod:datetime_source"] == "option"


def test_a_list_given_in_the_command_lines_form_with_a_typo_names_it(tmp_path: Path) -> None:
    line = _refused(tmp_path, 'clouds: {order: "mask,sidcar"}\n')
    assert "e.g." not in line  # no example that would be refused again
    assert line.endswith("not 'mask,sidcar': 'sidcar' is none of them (did you mean "
                         "'sidecar'?)"), line  # fmt: skip


def test_an_option_over_the_files_order_names_each_where_it_came_from(tmp_path: Path) -> None:
    # Newcomer F8: `--datetime` typed with the file's `time: {order: [sidecar, name]}` was
    # `byod.yaml: time: datetime is given but order ...`, blaming the file for the option.
    config = tmp_path / "src" / "byod.yaml"
    yaml = "time: {order: [sidecar, name]}\n"
    line = _refused(tmp_path, yaml, "--datetime", "2021-05-01")
    assert line == (
        "error: byod ingest: --datetime: given, but time.order in "
        f"{config} (sidecar, name) leaves out 'option', the source that reads it: add "
        f"'option' to time.order in {config}, or give the order with it: --datetime-order "
        "option,sidecar,name (see byod ingest --help)"
    )
    # Either way out works: the order given with the option, or 'option' added to the file.
    result = _ingest(tmp_path, yaml, "--datetime", "2021-05-01", "--datetime-order",
                     "option,sidecar,name")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _item(tmp_path)["datetime"] == "2021-05-01T00:00:00Z"
    result = _ingest(tmp_path, "time: {order: [option, sidecar, name]}\n", "--datetime",
                     "2021-06-01")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _item(tmp_path)["datetime"] == "2021-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("yaml", "args", "start", "words"),
    [
        ("time: {datetime: 2021-05-01}\n", ["--datetime-order", "sidecar,name"],
         "--datetime-order: (sidecar, name) leaves out 'option', the source that reads "
         "time.datetime in ", ["--datetime-order option,sidecar,name", "remove time.datetime"]),
        ("clouds: {order: [sidecar]}\n", ["--cloud-rule", "fmask"],
         "--cloud-rule: given, but clouds.order in ",
         ["--cloud-order mask,sidecar", "add 'mask' to clouds.order in"]),
        (None, ["--cloud-cover", "5", "--cloud-order", "sidecar"],
         "--cloud-cover: given, but the order given (sidecar) leaves out 'option'",
         ["--cloud-order option,sidecar", "leave --cloud-cover out"]),
    ],
    ids=["file-value-typed-order", "typed-rule-file-order", "both-typed"],
)  # fmt: skip
def test_a_value_and_an_order_from_two_places_are_each_named(
    tmp_path: Path, yaml: str | None, args: list[str], start: str, words: list[str]
) -> None:
    line = _refused(tmp_path, yaml, *args)
    assert line.startswith(f"error: byod ingest: {start}"), line
    assert all(w in line for w in words), line
    assert "time:" not in line and "clouds:" not in line  # no section blamed as a whole


def test_the_flows_settings_over_the_files_order_are_named_as_given(tmp_path: Path) -> None:
    """The flow passes sections as models (their fields set): the same refusal, on the key
    the flow gave, so its report names `time.datetime`, not the file."""
    from byod.config import build_settings

    write_geotiff(tmp_path / "src" / "a.tif", ramp(16, 16), **UTM)
    (tmp_path / "src" / "byod.yaml").write_text("time: {order: [name]}\n")
    given = {"time": TimeOptions(datetime=datetime(2021, 5, 1, tzinfo=UTC))}
    with pytest.raises(ValidationError) as error:
        build_settings(str(tmp_path / "src"), given)
    (only,) = error.value.errors()
    assert only["loc"] == ("time", "datetime")
    assert "time.order in" in only["msg"] and "--datetime-order option,name" in only["msg"]


LICENSING = Path(__file__).parents[1] / "src/byod/schemas/stac-spec/v1.1.0/item-spec/json-schema"


@pytest.mark.parametrize(
    ("yaml", "args", "where", "meant"),
    [
        (None, ["--license", "CC BY 4.0"], "byod ingest: --license: 'CC BY 4.0'", "CC-BY-4.0"),
        ("license: Apache License 2.0\n", [], "{config}: license: 'Apache License 2.0'",
         "Apache-2.0"),
        ("license: CC BY-SA 4.0\n", [], "{config}: license: 'CC BY-SA 4.0'", "CC-BY-SA-4.0"),
    ],
    ids=["option", "file", "file-share-alike"],
)  # fmt: skip
def test_a_license_written_with_spaces_is_refused_with_its_spdx_id(
    tmp_path: Path, yaml: str | None, args: list[str], where: str, meant: str
) -> None:
    # Newcomer F3: accepted, then `byod validate` refused the collection byod had written.
    import jsonschema

    schema = json.loads((LICENSING / "licensing.json").read_text())
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, yaml, *args)
    assert line.startswith("error: " + where.format(config=config) + " is no SPDX license id: "
                           "STAC's collection schema takes one word of letters, digits, '_', "
                           "'-', '.' and '+' (^[\\w\\-\\.\\+]+$)"), line  # fmt: skip
    assert f"did you mean '{meant}'?" in line
    # The id suggested is taken, and STAC's own schema of the field takes what is written.
    fixed = [meant if a != "--license" and a in args[1:] else a for a in args]
    result = _ingest(tmp_path, None if yaml is None else f"license: {meant}\n", *fixed)
    assert result.exit_code == 0, result.output
    collection = json.loads((tmp_path / "c" / "src" / "collection.json").read_text())
    assert collection["license"] == meant
    jsonschema.validate({"license": collection["license"]}, schema)


@pytest.mark.parametrize(
    ("license", "advice"),
    [
        ("our own terms", "give the license's SPDX id (https://spdx.org/licenses/, e.g. "
         "CC-BY-4.0) or 'other'"),
        ("MIT OR Apache-2.0", "so not an SPDX expression with spaces either: give 'other' and "
         "name the licenses in the description"),
    ],
    ids=["unknown", "expression"],
)  # fmt: skip
def test_a_license_the_schema_refuses_and_no_id_is_known_for_says_what_to_give(
    tmp_path: Path, license: str, advice: str
) -> None:
    import jsonschema

    schema = json.loads((LICENSING / "licensing.json").read_text())
    with pytest.raises(jsonschema.ValidationError):  # what byod validate would refuse
        jsonschema.validate({"license": license}, schema)
    line = _refused(tmp_path, None, "--license", license)
    assert line.endswith(f"{advice} (see byod ingest --help)"), line
    with pytest.raises(ValidationError):  # the flow's and Python's settings too
        IngestSettings(source="/data", license=license)
    assert IngestSettings(source="/data", license="other").license == "other"


@pytest.mark.parametrize(
    ("yaml", "args", "where", "what"),
    [
        ("time: {order: []}\n", [], "{config}: time.order: ", "no time"),
        ("clouds: {order: []}\n", [], "{config}: clouds.order: ", "no cloud cover"),
        (None, ["--datetime-order", ""], "byod ingest: --datetime-order: ", "no time"),
        (None, ["--cloud-order", ","], "byod ingest: --cloud-order: ", "no cloud cover"),
    ],
    ids=["yaml-time", "yaml-clouds", "cli-time", "cli-clouds"],
)  # fmt: skip
def test_an_empty_order_is_refused_with_how_to_store_inputs_without(
    tmp_path: Path, yaml: str | None, args: list[str], where: str, what: str
) -> None:
    # Newcomer F6: `order: []` was taken and switched every source off, silently, while
    # `order:` (null) was refused as empty. README: an order is the sources tried, first to
    # last; nothing documented needs none, and what it would do has a way of its own.
    config = tmp_path / "src" / "byod.yaml"
    line = _refused(tmp_path, yaml, *args)
    assert line.startswith(f"error: {where.format(config=config)}is empty, so {what} would be "
                           "looked for: give the sources to try"), line  # fmt: skip
    assert "keep only option and user" in line


def _row_notes(tmp_path: Path, yaml: str) -> list[str]:
    report = tmp_path / "report.json"
    result = _ingest(tmp_path, yaml, "--report", str(report))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(report.read_text())["rows"]
    notes: list[str] = row["notes"]
    return notes


def test_the_way_to_store_inputs_without_a_time_works_and_its_note_names_only_those(
    tmp_path: Path,
) -> None:
    # What the empty order's refusal advises: the name's date (a_20240101) is not read.
    notes = _row_notes(tmp_path, "time: {order: [option, user]}\n")
    item = _item(tmp_path)
    assert item["datetime"] is None and item["byod:datetime_source"] == "unknown"
    (note,) = [n for n in notes if n.startswith("no acquisition time found")]
    assert note.endswith("; give one with --datetime, `time: {datetime: ...}` in byod.yaml, "
                         "or a byod-metadata.csv row"), note  # fmt: skip
    assert "name" not in note.split(";")[1]  # the order does not read names


def test_the_no_time_note_of_an_order_without_a_way_to_give_one_says_to_add_one(
    tmp_path: Path,
) -> None:
    # Newcomer F6: `order: [tag]` advised "...or a date in the file name", which it never reads.
    notes = _row_notes(tmp_path, "time: {order: [tag]}\n")
    (note,) = [n for n in notes if n.startswith("no acquisition time found")]
    assert note.split("; ", 1)[1] == (
        "the time order (tag) reads none you give: add option (--datetime), user (a "
        "byod-metadata.csv row) or name (a date in the file name) to it"
    )


def test_no_example_is_shown_where_none_the_model_takes_is_found(tmp_path: Path) -> None:
    # A number as a provider: `{name: 5}` is refused too (a name is text), so none is shown.
    line = _refused(tmp_path, "providers: [5]\n")
    assert line.endswith("providers: should be a mapping of its keys (name, roles, url, "
                         "description), not 5"), line  # fmt: skip
