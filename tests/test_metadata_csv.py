"""byod-metadata.csv as spreadsheet programs write it (review RB 4, 10): `;`-separated with
decimal commas, Windows-1252, headers in any case; a table byod cannot use is said once in
the run notes, never dropped silently; half a time span, rows naming no file, quoted
newlines, and columns byod does not read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.conftest import WriteRaster, ramp
from tests.readback import item_files
from tests.test_cli_manners import invoke

UTM = {"crs": "EPSG:32633", "transform": (10, 0, 500000, 0, -10, 5000000)}


def _run(tmp_path: Path, source: str | None = None) -> dict[str, Any]:
    result = invoke("ingest", source or str(tmp_path / "src"), "--catalog",
                    str(tmp_path / "cat"), "--target", str(tmp_path / "data"), "--json",
                    "--workers", "2")  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["input"]: row for row in report["rows"]}


def _properties(tmp_path: Path, item_id: str) -> dict[str, Any]:
    item = json.loads(item_files(tmp_path / "cat", "src")[item_id].read_text())
    return dict(item["properties"])


@pytest.mark.parametrize(
    ("data", "encoding_note"),
    [
        (b"file;cloud_cover;datetime\r\na.tif;12,5;2024-01-01\r\n", False),  # Excel de/fr
        (b"File\tCloud_Cover\tDatetime\na.tif\t12.5\t2024-01-01\n", False),  # tabs, header case
        ("file\tcloud_cover\tdatetime\na.tif\t12.5\t2024-01-01\n".encode("utf-16"), False),
        ("File,Cloud_Cover,DateTime\r\na.tif,12.5,2024-01-01\r\n".encode("cp1252"), False),
        ("file,cloud_cover,datetime,Bemerkung\r\na.tif,12.5,2024-01-01,Zürich café\r\n"
         .encode("cp1252"), True),
    ],
    ids=["semicolon-decimal-comma", "tab-header-case", "utf-16", "cp1252-ascii", "cp1252"],
)  # fmt: skip
def test_spreadsheet_shapes_are_read_or_said_not_used(
    tmp_path: Path, write_raster: WriteRaster, data: bytes, encoding_note: bool
) -> None:
    write_raster("a.tif", ramp(16, 16), **UTM)
    (tmp_path / "src" / "byod-metadata.csv").write_bytes(data)
    report = _run(tmp_path)
    (row,) = report["rows"]
    assert row["status"] == "ingested", row
    notes = " ".join(report["notes"])
    props = _properties(tmp_path, "a")
    assert props["datetime"] == "2024-01-01T00:00:00Z"
    assert props["eo:cloud_cover"] == 12.5
    assert ("Windows-1252" in notes) is encoding_note
    if encoding_note:
        assert "'Bemerkung'" in notes and "Zürich" not in notes


def test_a_table_without_a_file_column_is_one_run_note(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    for name in ("a.tif", "b.tif"):
        write_raster(name, ramp(16, 16), **UTM)
    (tmp_path / "src" / "byod-metadata.csv").write_text("name,cloud_cover\na.tif,10\nb.tif,20\n")
    report = _run(tmp_path)
    said = [n for n in report["notes"] if "byod-metadata.csv" in n]
    assert len(said) == 1 and "no 'file' column" in said[0] and "not used" in said[0]
    for row in report["rows"]:
        assert row["status"] == "ingested"
        assert not any("no 'file' column" in n for n in row.get("notes") or [])


def test_half_a_time_span_rows_naming_no_file_and_quoted_newlines(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    for name in ("a.tif", "b.tif", "c.tif", "d.tif"):
        write_raster(name, ramp(16, 16), **UTM)
    lines = [
        "file,start_datetime,end_datetime,cloud_cover,comment",
        "a.tif,2024-01-01,,,",
        "b,,2024-01-02,,",
        'c.tif,,,"multi',  # a quoted newline: the row starts here
        'line",',
        "d.tif,2024-01-01,2024-01-31,5,",
        "gone.tif,,,7,",
    ]
    (tmp_path / "src" / "byod-metadata.csv").write_text("\n".join(lines) + "\n")
    rows = _rows(report := _run(tmp_path))
    for name, column, line in (
        ("a.tif", "end_datetime", 2),
        ("b.tif", "start_datetime", 3),
        ("c.tif", "cloud_cover", lines.index('c.tif,,,"multi') + 1),
    ):
        row = rows[name]  # fmt: skip
        assert (row["status"], row["reason"]) == ("rejected", "bad_metadata"), row
        assert f"byod-metadata.csv row {line}: column {column}" in row["message"], row["message"]
    assert rows["d.tif"]["status"] == "ingested"
    props = _properties(tmp_path, "d")
    assert (props["start_datetime"], props["end_datetime"]) == (
        "2024-01-01T00:00:00Z",
        "2024-01-31T00:00:00Z",
    )
    gone = [n for n in report["notes"] if "gone.tif" in n]
    assert gone == [f"byod-metadata.csv row {len(lines)}: 'gone.tif' is no file of its folder; "
                    "the row is not used"]  # fmt: skip
    # The unknown column: once, in the run notes, not on any row.
    assert sum("'comment'" in n for n in report["notes"]) == 1
    assert not any("'comment'" in n for r in rows.values() for n in r.get("notes") or [])


def test_editing_a_column_byod_does_not_read_changes_nothing(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    for name in ("a.tif", "b.tif"):
        write_raster(name, ramp(16, 16), **UTM)
    table = tmp_path / "src" / "byod-metadata.csv"
    table.write_text("file,cloud_cover,comment\na.tif,10,first\nb.tif,20,x\n")
    assert {r["status"] for r in _run(tmp_path)["rows"]} == {"ingested"}
    table.write_text("file,cloud_cover,comment\na.tif,10,edited\nb.tif,20,x\n")
    assert {r["status"] for r in _run(tmp_path)["rows"]} == {"unchanged"}
    table.write_text("file,cloud_cover,comment\na.tif,11,edited\nb.tif,20,x\n")
    assert {k: r["status"] for k, r in _rows(_run(tmp_path)).items()} == {
        "a.tif": "replaced", "b.tif": "unchanged"}  # fmt: skip
    assert _properties(tmp_path, "a")["eo:cloud_cover"] == 11


def test_a_blob_source_says_it_on_each_input(
    azure_env: str, tmp_path: Path, write_raster: WriteRaster
) -> None:
    """From a container the table is read in each input's worker (discovery has a listing,
    no bytes): a table byod cannot use is said in the input's notes."""
    write_raster("a.tif", ramp(16, 16), **UTM)
    (tmp_path / "src" / "byod-metadata.csv").write_text("name,cloud_cover\na.tif,10\n")
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    container = service.create_container(f"csv-{azure_env}")
    for path in (tmp_path / "src").iterdir():
        container.upload_blob(f"in/{path.name}", path.read_bytes())
    (row,) = _run(tmp_path, f"az://csv-{azure_env}/in")["rows"]
    assert row["status"] == "ingested"
    assert any("no 'file' column" in n for n in row["notes"]), row["notes"]
