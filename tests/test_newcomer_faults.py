"""Faults a newcomer met walking through the README (brief N2): each fails without its fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient
from rasterio.transform import from_origin
from typer.testing import CliRunner

from byod.browse import render_site
from byod.cli import app
from byod.report import Report, Status
from byod.storage import open_store
from tests.conftest import AZURITE_KEY, WriteRaster, ramp, write_geotiff
from tests.readback import item_files


def _items(tmp_path: Path) -> dict[str, dict[str, Any]]:
    files = item_files(tmp_path / "catalog", "test")
    return {k: json.loads(p.read_text()) for k, p in files.items()}


# --- 1. a cloud band the file does not have ---------------------------------------------------


def test_cloud_band_beyond_the_files_bands_is_a_note_not_a_crash(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """`--cloud-band 2` (or byod.yaml `clouds.band: 2`, as in the README's example) over a
    folder with a single-band raster and a two-band raster whose band 2 is an Fmask layer:
    the single-band input is ingested with a note (and no eo:cloud_cover: no other source),
    the two-band one gets the mask's count (cloud over valid pixels, fill excluded)."""
    write_raster("dem.tif", ramp(20, 20))
    fmask = np.zeros((20, 20), np.uint16)
    fmask[:5, :] = 4  # cloud: 100 of 400 pixels
    fmask[5:7, :] = 255  # fill: 40 pixels, not valid
    write_raster("two.tif", np.stack([ramp(20, 20)[0], fmask]))
    report = run_ingest(clouds={"band": 2, "rule": "fmask", "order": ("mask", "imagery")})
    rows = {r.input: r for r in report.rows}
    assert {k: r.status for k, r in rows.items()} == {
        "dem.tif": Status.INGESTED, "two.tif": Status.INGESTED}  # fmt: skip
    assert any("cloud band 2: the file has 1 band" in n for n in rows["dem.tif"].notes)
    assert not any("cloud band" in n for n in rows["two.tif"].notes)
    items = _items(tmp_path)
    assert "eo:cloud_cover" not in items["dem"]["properties"]
    assert items["two"]["properties"]["eo:cloud_cover"] == round(100 / 360 * 100, 2)


def test_cloud_band_missing_keeps_the_other_sources(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """GDAL's IMAGERY CLOUDCOVER (a TIFF tag here) still gives the value when band 5 does not
    exist, and the note says the value came from elsewhere."""
    write_raster("scene.tif", ramp(10, 10), tags={"CLOUDCOVER": "37.5"})
    report = run_ingest(clouds={"band": 5, "rule": "binary"})
    (row,) = report.rows
    assert row.status is Status.INGESTED
    (note,) = [n for n in row.notes if "cloud band" in n]
    assert "cloud band 5: the file has 1 band" in note and "other sources" in note
    props = _items(tmp_path)["scene"]["properties"]
    assert props["eo:cloud_cover"] == 37.5
    assert props["byod:cloud_cover_source"] == "imagery:CLOUDCOVER"


def test_cloud_band_without_a_rule_is_noted(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """A band alone does not say what its values mean: the input says it was not read."""
    write_raster("two.tif", ramp(10, 10, bands=2))
    (row,) = run_ingest(clouds={"band": 2}).rows
    assert row.status is Status.INGESTED
    assert any("cloud band 2 without a cloud rule" in n for n in row.notes)
    assert "eo:cloud_cover" not in _items(tmp_path)["two"]["properties"]


# --- 2. a day-month-year name: the year, and a note saying what was not read ------------------


def test_day_month_year_name_is_noted_in_the_report(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("survey 01.06.2023.tif", ramp(8, 8))
    write_raster("field photo 2023 06 01.tif", ramp(8, 8))
    rows = {r.input: r for r in run_ingest().rows}
    dmy, ymd = rows["survey 01.06.2023.tif"], rows["field photo 2023 06 01.tif"]
    assert any("'01.06' not read" in n and "--datetime-pattern" in n for n in dmy.notes)
    items = {i["properties"]["byod:datetime_source"]: i["properties"]
             for i in _items(tmp_path).values()}  # fmt: skip
    assert (items["name:2023"]["start_datetime"], items["name:2023"]["end_datetime"]) == (
        "2023-01-01T00:00:00Z", "2023-12-31T23:59:59.999999Z")  # fmt: skip
    day = items["name:2023 06 01"]
    assert (day["start_datetime"], day["end_datetime"]) == (
        "2023-06-01T00:00:00Z", "2023-06-01T23:59:59.999999Z")  # fmt: skip
    assert not any("not read" in n for n in ymd.notes)


# --- 3. periods and time-less items shown as what they are ------------------------------------


def _three_times(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("dem.tif", ramp(8, 8))  # no time anywhere
    write_raster("ndvi_2023.tif", ramp(8, 8))  # the year 2023
    write_raster("scan_20240101T101500.tif", ramp(8, 8))  # an instant
    write_raster("runoff_20200101_20200131.tif", ramp(8, 8))  # two days: a period
    run_ingest()


def test_search_table_shows_periods_and_unknown_times(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    _three_times(tmp_path, write_raster, run_ingest)
    result = CliRunner().invoke(app, ["search", str(tmp_path / "catalog")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines()
             if line.count("│") > 3 and line.split("│")[2].strip()}  # fmt: skip
    assert "2023-01-01/2023-12-31" in lines["ndvi_2023"]
    assert "2020-01-01/2020-01-31" in lines["runoff_20200101_20200131"]
    assert "2024-01-01T10:15:00Z" in lines["scan_20240101t101500"]
    assert "unknown" in lines["dem"]


def test_browse_cards_show_periods_and_unknown_times(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    _three_times(tmp_path, write_raster, run_ingest)
    render_site(open_store(tmp_path / "catalog"), tmp_path / "site")
    page = (tmp_path / "site" / "test" / "index.html").read_text()
    cards = dict(re.findall(r'href="([^"]+)\.html">.*?</a><br><small>([^<]*)</small>', page))
    assert cards == {
        "dem": "unknown", "ndvi_2023": "2023-01-01/2023-12-31",
        "runoff_20200101_20200131": "2020-01-01/2020-01-31",
        "scan_20240101t101500": "2024-01-01T10:15:00Z",
    }  # fmt: skip
    # The collection's extent starts at STAC's 0001-01-01 for its time-less item: unknown.
    assert re.search(r"unknown/\d{4}-\d\d-\d\dT", page) and "0001-01-01" not in page
    site = tmp_path / "site" / "test"
    assert "<p class='time'>time: unknown</p>" in (site / "dem.html").read_text()
    year = (site / "ndvi_2023.html").read_text()
    assert "<p class='time'>time: 2023-01-01/2023-12-31</p>" in year


# --- 5, 6. byod sign: a local item is no blob; a blob item keeps every field byod wrote -------


def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME",
                 "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID",
                 "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def _local_item(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> Path:
    write_raster("a_20240101.tif", ramp(8, 8))
    run_ingest()
    return item_files(tmp_path / "catalog", "test")["a_20240101"]


def test_sign_a_local_item_without_credentials_is_a_usage_error(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    item = _local_item(tmp_path, write_raster, run_ingest)
    _no_azure_env(monkeypatch)
    result = CliRunner().invoke(app, ["sign", str(item)])
    assert result.exit_code == 2, result.output
    assert "only Azure blob URLs can be signed" in result.output
    assert "credentials" not in result.output


def test_sign_a_local_item_with_credentials_is_a_usage_error(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report], azure_env: str
) -> None:
    item = _local_item(tmp_path, write_raster, run_ingest)
    result = CliRunner().invoke(app, ["sign", str(item)])
    assert result.exit_code == 2, result.output
    assert "only Azure blob URLs can be signed" in result.output
    assert result.stdout.strip() == "" or "{" not in result.stdout


def test_sign_keeps_every_field_of_a_blob_item(azure_env: str, tmp_path: Path) -> None:
    """The signed item is the stored JSON with only its blob hrefs signed: proj:epsg and the
    projection extension's version byod wrote stay (pystac migrates them on read)."""
    write_geotiff(tmp_path / "src" / "c_20240103.tif", ramp(), crs="EPSG:32633",
                  transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
    args = ["ingest", str(tmp_path / "src"), "--target", f"az://cogs-{azure_env}",
            "--catalog", f"az://stac-{azure_env}", "--collection", "c"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    connection = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    service = BlobServiceClient.from_connection_string(connection)
    container = service.get_container_client(f"stac-{azure_env}")
    (key,) = [b.name for b in container.list_blobs() if b.name.endswith("/c_20240103.json")]
    stored = json.loads(container.download_blob(key).readall())
    assert stored["properties"]["proj:epsg"] == 32633  # what byod writes, for stackstac

    result = CliRunner().invoke(app, ["sign", f"az://stac-{azure_env}/{key}"])
    assert result.exit_code == 0, result.output
    signed = json.loads(result.stdout)
    assert {k: v for k, v in signed.items() if k != "assets"} == {
        k: v for k, v in stored.items() if k != "assets"}  # fmt: skip
    assert signed["assets"].keys() == stored["assets"].keys()
    for name, asset in stored["assets"].items():
        out = signed["assets"][name]
        assert {k: v for k, v in out.items() if k != "href"} == {
            k: v for k, v in asset.items() if k != "href"}  # fmt: skip
        assert "sig=" in out["href"]
        assert out["href"].split("?", 1)[0].endswith(asset["href"].rsplit("/", 1)[-1])


# --- 4. the ingest table never cuts an item id -------------------------------------------------


@pytest.mark.parametrize("columns", ["80", "60"])
def test_ingest_table_keeps_long_ids_whole(
    tmp_path: Path, write_raster: WriteRaster, columns: str
) -> None:
    long_name = "s2_timeseries-t33uxp_20240605t101559_ndvi_masked_v2_final_export"
    write_raster(f"{long_name}.tif", ramp(8, 8))
    write_raster("short_20240101.tif", ramp(8, 8))
    (tmp_path / "src" / "broken.tif").write_bytes(b"not a tiff, " * 40)  # a wrapped message
    args = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "catalog"), "--workers", "1",
            "--collection", "test"]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": columns})
    assert result.exit_code == 1, result.output  # broken.tif is rejected
    ids = {i["id"] for i in _items(tmp_path).values()}
    assert long_name in ids  # the id byod gave it (independent of the table)
    for item_id in ids:
        assert any(item_id in line for line in result.output.splitlines()), result.output
    assert "…" not in result.output


# --- 7. the messages name the sources the run's order looked in -------------------------------


def test_no_datetime_names_the_configured_order_and_byod_yaml(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("dem.tif", ramp(8, 8))
    (tmp_path / "src" / "byod.yaml").write_text("time: {order: [sidecar, name], require: true}\n")
    args = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "catalog"), "--workers", "1", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert row["reason"] == "no_datetime"
    message = row["message"]
    assert "product metadata" in message and "the name" in message
    for other in ("--datetime,", "byod-metadata.csv", "tags", "TIFFTAG_DATETIME"):
        assert other not in message
    assert "byod.yaml" in message


def test_no_cloud_source_note_names_byod_metadata_csv(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp(8, 8))
    (row,) = run_ingest().rows
    (note,) = [n for n in row.notes if n.startswith("no cloud source")]
    assert "byod-metadata.csv" in note and "--cloud-cover" in note
    (row,) = run_ingest(clouds={"order": ("mask", "imagery")},
                        catalog=str(tmp_path / "other")).rows  # fmt: skip
    (note,) = [n for n in row.notes if n.startswith("no cloud source")]
    assert note == "no cloud source (mask, IMAGERY CLOUDCOVER); eo:cloud_cover left out"


# --- 7. scripts/azurite prints a line the shell can export as it is ----------------------------


def test_azurite_script_prints_an_export_line_that_survives_the_shell(tmp_path: Path) -> None:
    """The connection string holds `;`: unquoted, `export X=a;b` stops at the first one. The
    real script runs from a copy of its folder (its data in tmp_path/.azurite); the line it
    prints is given to bash as a user pastes it."""
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    for name in ("azurite", "bootstrap-node.sh"):
        shutil.copy2(repo / "scripts" / name, tmp_path / "scripts" / name)
    for name in ("node_modules", "package-lock.json", "package.json"):
        (tmp_path / name).symlink_to(repo / name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(tmp_path / "scripts" / "azurite"), str(port)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    with proc.stdout:
        try:
            line = proc.stdout.readline().strip()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert line.startswith("export AZURE_STORAGE_CONNECTION_STRING=")
    shown = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$AZURE_STORAGE_CONNECTION_STRING"'],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}/devstoreaccount1"
    assert shown == ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
                     f"{AZURITE_KEY};BlobEndpoint={endpoint};")  # fmt: skip


def test_export_summary_in_the_top_level_help_is_one_sentence() -> None:
    """Typer keeps the docstring's line breaks in the commands list: the summary broke
    mid-sentence ('collections for' / 'catalogs with an API') however wide the terminal."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    (line,) = [line for line in result.output.splitlines() if "│ export" in line]
    assert re.search(r"│ export\s+Export .*catalogs with an API", line), result.output


def test_order_defaults_in_ingest_help_are_whole_at_80_columns() -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = re.sub(r"[│\s]+", " ", result.output)
    assert "…" not in result.output
    assert "[default: option, user, mask, sidecar, imagery]" in text
    assert "[default: option, user, sidecar, tag, name, written]" in text
