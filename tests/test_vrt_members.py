"""A VRT and the inputs it reads: the VRT fingerprinted over its members.

`gdalbuildvrt -separate stack.vrt b1.tif b2.tif` beside its sources: a re-run missed an edit
of a member (the VRT's own bytes unchanged) and kept a stale COG; and the report said nothing
of the pixels stored twice. The VRTs here are written as gdalbuildvrt writes them
(test_band_nodata).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pystac
import rasterio

from byod.report import Report, Status
from tests.test_band_nodata import SIZE, _one_band, _vrt_band, _write_vrt


def _bands(src: Path, folder: str = "") -> list[np.ndarray]:
    out = []
    for i in (1, 2):
        data = np.full((SIZE, SIZE), 40 * i, np.uint8)
        data[:8, :8] = 0
        _one_band(src / folder / f"b{i}.tif", data, nodata=0)
        out.append(data)
    return out


def _items(root: Path) -> dict[str, pystac.Item]:
    catalog = pystac.Catalog.from_file(str(root / "catalog" / "catalog.json"))
    return {i.id: i for i in catalog.get_items(recursive=True)}


def _cog_bands(item: pystac.Item) -> list[np.ndarray]:
    out = []
    for asset in item.assets.values():
        if "data" in (asset.roles or []):
            with rasterio.open(asset.get_absolute_href()) as cog:
                out += [cog.read(i) for i in cog.indexes]
    return out


def test_an_edit_of_a_member_ingests_the_vrt_again(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    src = tmp_path / "src"
    bands = _bands(src)
    _write_vrt(src / "stack.vrt", [_vrt_band(1, "b1.tif", "Byte", "0"),
                                  _vrt_band(2, "b2.tif", "Byte", "0")])  # fmt: skip
    report = run_ingest()
    assert {r.status for r in report.rows} == {Status.INGESTED}
    assert any(n.startswith("stack.vrt: a VRT of 2 input(s) of the source (b1.tif, b2.tif)")
               and "stored in its item and in their own" in n for n in report.notes)  # fmt: skip
    stored = _cog_bands(_items(tmp_path)["stack"])
    assert all(np.array_equal(a, b) for a, b in zip(stored, bands, strict=True))

    # A re-run that leaves the VRT unchanged stores nothing twice: no note.
    again = run_ingest()
    assert {r.status for r in again.rows} == {Status.UNCHANGED}
    assert not any("stack.vrt: a VRT of" in n for n in again.notes)
    # An edit of a member changes the VRT's pixels: the VRT is ingested again, with them.
    bands[1][20:30, 20:30] = 7
    _one_band(src / "b2.tif", bands[1], nodata=0)
    rerun = {r.input: r.status for r in run_ingest().rows}
    assert rerun == {"b1.tif": Status.UNCHANGED, "b2.tif": Status.REPLACED,
                     "stack.vrt": Status.REPLACED}  # fmt: skip
    stored = _cog_bands(_items(tmp_path)["stack"])
    assert np.array_equal(stored[1], bands[1])


def test_nested_and_absolute_members(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    src = tmp_path / "src"
    _bands(src, "parts")
    inner = _write_vrt(src / "parts" / "inner.vrt", [_vrt_band(1, "b1.tif", "Byte", "0")])
    outer = _write_vrt(src / "outer.vrt", [_vrt_band(1, "parts/inner.vrt", "Byte", "0")])
    # b2 named by its absolute path (relativeToVRT="0"), as gdalbuildvrt does for sources
    # given by absolute paths in another folder.
    text = _vrt_band(2, str((src / "parts" / "b2.tif").resolve()), "Byte", "0")
    text = text.replace('relativeToVRT="1"', 'relativeToVRT="0"')
    outer.write_text(outer.read_text().replace("</VRTDataset>", f"  {text}\n</VRTDataset>"))
    assert inner.is_file()
    assert {r.status for r in run_ingest().rows} == {Status.INGESTED}
    # An edit two VRTs down (inner.vrt's b1) and one named by absolute path (b2) each
    # ingest outer.vrt again.
    for name in ("b1.tif", "b2.tif"):
        data = np.full((SIZE, SIZE), 99, np.uint8)
        _one_band(src / "parts" / name, data, nodata=0)
        rows = {r.input: r.status for r in run_ingest().rows}
        assert rows["outer.vrt"] is Status.REPLACED and rows[f"parts/{name}"] is Status.REPLACED
        assert rows["parts/inner.vrt"] is (Status.REPLACED if name == "b1.tif"
                                           else Status.UNCHANGED)  # fmt: skip


def test_a_vrt_refused_by_its_worker_loses_no_member(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    src = tmp_path / "src"
    _bands(src)
    stack = _write_vrt(src / "stack.vrt", [_vrt_band(1, "b1.tif", "Byte", "0")])
    stack.write_text(
        stack.read_text().replace(  # a second source that does not exist
            "</VRTDataset>", f"  {_vrt_band(2, 'gone.tif', 'Byte', '0')}\n</VRTDataset>"
        )
    )
    report = run_ingest()
    rows = {r.input: r for r in report.rows}
    assert rows["stack.vrt"].status is Status.REJECTED
    assert rows["b1.tif"].status is Status.INGESTED and rows["b2.tif"].status is Status.INGESTED
    # Refused, the VRT stored nothing: no note says its pixels are stored twice.
    assert not any("stack.vrt: a VRT of" in n for n in report.notes)
