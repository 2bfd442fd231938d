"""Small faults of the command line a user hits (issue 12, helper B's list): refusals are one
line naming the file or option and the reason, with the exit code of errors.py's family
(2: usage or configuration), never a traceback or a multi-line box."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WriteRaster, ramp
from tests.readback import item_files
from tests.test_cli_manners import DEV_ACCOUNT, invoke, one_error_line

BYOD = str(Path(sys.executable).with_name("byod"))
# Longer than an 80-column terminal, shorter than sources.MAX_ID_LENGTH (120): kept whole.
LONG_NAME = "scene_" + "x" * 90 + "_20240101"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog of two items, one with an id longer than a terminal's 80 columns."""
    from tests.conftest import write_geotiff

    root = tmp_path_factory.mktemp("faults2")
    for name in (f"{LONG_NAME}.tif", "short_20240102.tif"):
        write_geotiff(root / "src" / name, ramp(16, 16), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    made = invoke("ingest", str(root / "src"), "--catalog", str(root / "cat"), "--target",
                  str(root / "data"), "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.output
    return root / "cat"


# --- 1, 2: browse ------------------------------------------------------------------------------


@pytest.mark.parametrize("under", [False, True], ids=["the-file", "a-folder-under-a-file"])
def test_browse_out_that_is_a_file_is_a_usage_error(
    tmp_path: Path, catalog: Path, under: bool
) -> None:
    a_file = tmp_path / "pages.html"
    a_file.write_text("mine")
    out = a_file / "site" if under else a_file
    result = invoke("browse", str(catalog), "--out", str(out), "--port", "0")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(out) in line and "file" in line
    assert a_file.read_text() == "mine"


def test_browse_a_missing_catalog_says_no_catalog_there(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = invoke("browse", str(missing), "--port", "0")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"no catalog at {missing}" in line
    assert "Errno" not in line


# --- 3: click's usage errors in one line, --help complete -------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ingest", "SRC", "--foo"], ["byod ingest", "no such option", "--foo"]),
        (["ingest"], ["byod ingest", "missing argument", "SOURCE"]),
        (["ingest", "SRC", "--compression", "lzma"], ["--compression", "lzma", "zstd"]),
        (["ingest", "SRC", "--workers", "0"], ["--workers", "1"]),
        (["search"], ["byod search", "CATALOG"]),
        (["nope"], ["byod", "nope"]),
    ],
    ids=["unknown-option", "missing-argument", "bad-choice", "out-of-range", "search", "command"],
)
def test_usage_errors_are_one_line_naming_the_command_and_its_help(
    args: list[str], words: list[str]
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    for word in words:
        assert word in line, (word, line)
    command = "byod" if args[0] == "nope" else f"byod {args[0]}"
    assert line.endswith(f"(see {command} --help)"), line
    assert "╭" not in result.output and "Usage:" not in result.output


def test_help_stays_complete() -> None:
    """Every option of ingest is in its --help, which exits 0 (compared with the command's
    own parameter list, not with a copy of the help text)."""
    from typer.main import get_command

    from byod.cli import app

    group = get_command(app)
    ingest = group.commands["ingest"]  # type: ignore[attr-defined]
    options = [o for p in ingest.params for o in p.opts if o.startswith("--")]
    result = invoke("ingest", "--help", env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0
    assert "Usage: byod ingest [OPTIONS] SOURCE" in result.output
    missing = [o for o in options if o not in result.output]
    assert missing == [] and len(options) > 30


# --- 4: sources byod cannot read -------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["s3://bucket/x", "gs://bucket/x", "http://example.org/x",
     "https://account.blob.core.windows.net/container/x"],
)  # fmt: skip
def test_a_source_of_another_scheme_is_refused_before_anything_is_written(
    tmp_path: Path, source: str
) -> None:
    report = tmp_path / "report.json"
    result = invoke("ingest", source, "--catalog", str(tmp_path / "cat"), "--target",
                    str(tmp_path / "data"), "--report", str(report), "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    scheme = source.split("://")[0]
    assert line.startswith(f"error: {source}: ") and f"{scheme}://" in line
    assert "local folder" in line and "az://" in line
    assert not (tmp_path / "cat").exists() and not (tmp_path / "data").exists()
    assert json.loads(report.read_text())["rows"] == []


# --- 5: sign -----------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [True, False], ids=["credentials", "none"])
def test_sign_refuses_a_foreign_url_as_not_an_azure_blob(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: bool
) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME",
                 "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    env = {"AZURE_STORAGE_CONNECTION_STRING": DEV_ACCOUNT} if credentials else None
    for target in ("https://example.org/a.tif", str(tmp_path / "a.tif")):
        result = invoke("sign", target, env=env)
        assert result.exit_code == 2, result.output
        line = one_error_line(result)
        assert target in line and "only Azure blob URLs" in line and "credentials" not in line


# --- 6: -v after the command -------------------------------------------------------------------


def test_verbose_works_after_the_command_too(tmp_path: Path, write_raster: WriteRaster) -> None:
    write_raster("a.tif", ramp())
    base = [BYOD, "ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "cat"),
            "--target", str(tmp_path / "data"), "--quiet"]  # fmt: skip

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*base, *extra], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done

    quiet = run()
    assert "DEBUG " not in quiet.stderr
    after = run("-vv")  # was: "No such option: -v", exit 2
    assert "DEBUG " in after.stderr
    before = subprocess.run([BYOD, "-vv", *base[1:]], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert before.returncode == 0 and "DEBUG " in before.stderr
    info = run("-v")
    assert "DEBUG " not in info.stderr


# --- 7: search never cuts ids ------------------------------------------------------------------


def test_search_table_shows_whole_ids_in_a_narrow_terminal(catalog: Path) -> None:
    result = invoke("search", str(catalog), env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    ids = {json.loads(p.read_text())["id"] for p in item_files(catalog, "src").values()}
    assert len(ids) == 2 and max(map(len, ids)) > 80
    for item_id in ids:  # each id whole, on one line
        assert any(item_id in line for line in result.output.splitlines()), item_id
    assert "…" not in result.output


# --- 8 is in test_sources.py; 9, 10: byod-metadata.csv ------------------------------------------


def _ingest_json(tmp_path: Path) -> dict[str, dict[str, object]]:
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "cat"),
                    "--target", str(tmp_path / "data"), "--json", "--workers", "2")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    return {row["input"]: row for row in json.loads(result.stdout)["rows"]}


def test_bad_cells_of_byod_metadata_csv_reject_their_input_only(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    for name in ("a.tif", "b.tif", "c.tif", "d.tif"):
        write_raster(name, ramp(16, 16))
    (tmp_path / "src" / "byod-metadata.csv").write_text(
        "file,cloud_cover,datetime,start_datetime,end_datetime,clod_cover\n"
        "a.tif,140,,,,\n"
        "b,,yesterday,,,\n"
        "c.tif,12.5,2023-05-04T10:00:00Z,,,3\n"
        "d.tif,,,2023-06-30T00:00:00Z,2023-06-01T00:00:00Z,\n"
    )
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "cat"),
                    "--target", str(tmp_path / "data"), "--json", "--workers", "2")  # fmt: skip
    report = json.loads(result.stdout)
    rows = {row["input"]: row for row in report["rows"]}
    expected = {"a.tif": (2, "cloud_cover", "140"), "b.tif": (3, "datetime", "yesterday"),
                "d.tif": (5, "end_datetime", "2023-06-01T00:00:00Z")}  # fmt: skip
    for name, (line, column, value) in expected.items():
        row = rows[name]
        assert (row["status"], row["reason"]) == ("rejected", "bad_metadata"), row
        message = str(row["message"])
        assert f"byod-metadata.csv row {line}: column {column}: '{value}'" in message, message
        assert "\n" not in message
    assert rows["c.tif"]["status"] == "ingested"
    item = json.loads(item_files(tmp_path / "cat", "src")["c"].read_text())
    assert item["properties"]["datetime"] == "2023-05-04T10:00:00Z"
    assert item["properties"]["eo:cloud_cover"] == 12.5
    # The unknown column: once per run, in the run notes (review RB 10).
    assert sum("byod-metadata.csv: column 'clod_cover'" in n for n in report["notes"]) == 1


def test_editing_one_csv_row_reingests_that_input_only(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    for name in ("a.tif", "b.tif", "c.tif"):
        write_raster(name, ramp(16, 16))
    table = tmp_path / "src" / "byod-metadata.csv"
    table.write_text("file,cloud_cover\na.tif,10\nb.tif,20\n")
    first = _ingest_json(tmp_path)
    assert {r["status"] for r in first.values()} == {"ingested"}
    table.write_text("file,cloud_cover\nb.tif,25\na.tif,10\n")  # b edited, a moved
    second = _ingest_json(tmp_path)
    assert {k: r["status"] for k, r in second.items()} == {
        "a.tif": "unchanged", "b.tif": "replaced", "c.tif": "unchanged"}  # fmt: skip
    item = json.loads(item_files(tmp_path / "cat", "src")["b"].read_text())
    assert item["properties"]["eo:cloud_cover"] == 25
    table.write_text("file,cloud_cover\nb.tif,25\na.tif,10\nc.tif,5\n")  # c gets a row
    third = _ingest_json(tmp_path)
    assert {k: r["status"] for k, r in third.items()} == {
        "a.tif": "unchanged", "b.tif": "unchanged", "c.tif": "replaced"}  # fmt: skip
