"""Settings refused in the user's words (newcomer faults left from the last session): a
source named twice in an order, byod.yaml's `datetime:` beside `time:`, and the mistakes
most likely in a hand-written byod.yaml (a misspelt key, a single value where a section or
a list belongs, a run's setting in the dataset's file) said with what is accepted instead
of pydantic's "Extra inputs are not permitted" / "Input should be a valid ..."."""

from __future__ import annotations

import json
import re
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
        ("clouds: {order: }\n", "clouds.order: is empty: give a list (each one of option, "
         "user, mask, sidecar, imagery) or leave it out"),
    ],
    ids=["date-with-slashes", "a-word", "empty-order"],
)  # fmt: skip
def test_a_time_or_order_in_the_wrong_form_says_the_form(
    tmp_path: Path, yaml: str, line: str
) -> None:
    config = tmp_path / "src" / "byod.yaml"
    shown = _refused(tmp_path, yaml)
    assert shown.startswith(f"error: {config}: {line}"), shown
