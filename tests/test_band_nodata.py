"""Per-band nodata and masks told truly: a GeoTIFF holds one nodata value for all its bands
(TIFFTAG_GDAL_NODATA) and only a per-dataset internal mask, so an input whose bands tell
valid pixels apart differently is stored one COG per band, each with its band's own nodata
or mask; an input whose bands agree stays one COG.

Inputs are shaped as real products write them: a VRT with per-band <NoDataValue> over
single-band GeoTIFFs (as `gdalbuildvrt -separate` writes it), an ERDAS Imagine `.img` (nodata
per band), a GeoTIFF and a PNG with per-band NoDataValue in their `.aux.xml` (GDAL's PAM),
a VRT whose bands have masks of their own. Expected values are GDAL's reading of the
INPUT (rasterio, band by band), never byod's output.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from PIL import Image
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.transform import from_origin
from shapely.geometry import Point, shape

from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import write_geotiff
from tests.readback import item_files

SIZE = 64
TRANSFORM = from_origin(500000, 5000000, 10, 10)
UTM = "EPSG:32633"


def _vrt_band(index: int, source: str, dtype: str, nodata: str | None = None,
              mask: bool = False) -> str:  # fmt: skip
    """One <VRTRasterBand> as gdalbuildvrt -separate writes it (a ComplexSource with the
    source's NODATA when it has one), or with the source's mask as the band's own mask."""
    props = (f'<SourceProperties RasterXSize="{SIZE}" RasterYSize="{SIZE}" DataType="{dtype}" '
             f'BlockXSize="{SIZE}" BlockYSize="{SIZE}" />')  # fmt: skip
    rects = (f'<SrcRect xOff="0" yOff="0" xSize="{SIZE}" ySize="{SIZE}" />'
             f'<DstRect xOff="0" yOff="0" xSize="{SIZE}" ySize="{SIZE}" />')  # fmt: skip
    source_xml = f'<SourceFilename relativeToVRT="1">{source}</SourceFilename>'
    if nodata is not None:
        body = (f"<NoDataValue>{nodata}</NoDataValue><ComplexSource>{source_xml}"
                f"<SourceBand>1</SourceBand>{props}{rects}<NODATA>{nodata}</NODATA>"
                "</ComplexSource>")  # fmt: skip
    else:
        body = f"<SimpleSource>{source_xml}<SourceBand>1</SourceBand>{props}{rects}</SimpleSource>"
    if mask:
        mask_source = f"<SimpleSource>{source_xml}<SourceBand>mask,1</SourceBand></SimpleSource>"
        body += f'<MaskBand><VRTRasterBand dataType="Byte">{mask_source}</VRTRasterBand></MaskBand>'
    return f'<VRTRasterBand dataType="{dtype}" band="{index}">{body}</VRTRasterBand>'


def _write_vrt(path: Path, bands: list[str]) -> Path:
    wkt = CRS.from_string(UTM).to_wkt()
    path.write_text(
        f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}">\n'
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{wkt}</SRS>\n'
        f"  <GeoTransform>{', '.join(repr(float(v)) for v in TRANSFORM.to_gdal())}</GeoTransform>\n"
        + "\n".join(f"  {b}" for b in bands)
        + "\n</VRTDataset>\n"
    )
    return path


def _one_band(path: Path, data: np.ndarray, *, nodata: float | None = None,
              mask: np.ndarray | None = None) -> Path:  # fmt: skip
    profile: dict[str, Any] = {"crs": UTM, "transform": TRANSFORM}
    if nodata is not None:
        profile["nodata"] = nodata
    return write_geotiff(path, data, mask=mask, **profile)


def _separate_vrt(src: Path) -> Path:
    """Band 1 nodata 0 (valid: the left half, holding 255s); band 2 nodata 255 (valid: a
    block in the right half, holding 0s). One GeoTIFF with either nodata misreads the other
    band: with 0, band 2's 255 fill becomes data everywhere."""
    one = np.full((SIZE, SIZE), 50, np.uint8)
    one[:, 32:] = 0
    one[:, 8:12] = 255
    two = np.full((SIZE, SIZE), 255, np.uint8)
    two[0:16, 32:48] = 60
    two[0:16, 40:48] = 0
    _one_band(src / "separate" / "one.tif", one, nodata=0)
    _one_band(src / "separate" / "two.tif", two, nodata=255)
    return _write_vrt(src / "separate" / "stack.vrt", [
        _vrt_band(1, "one.tif", "Byte", "0"), _vrt_band(2, "two.tif", "Byte", "255")])  # fmt: skip


def _erdas(src: Path, vrt: Path) -> Path:
    """An ERDAS Imagine file (HFA keeps a nodata value per band, as ArcGIS writes them),
    written by GDAL's HFA driver from the two-band VRT."""
    rasterio.shutil.copy(vrt, src / "erdas.img", driver="HFA")
    return src / "erdas.img"


def _pam_tiff(src: Path) -> Path:
    """Three int16 bands, per-band nodata in the `.aux.xml` as GDAL's PAM writes it: band 1
    nodata 0, band 2 none (its 0s and -9999s are data), band 3 nodata -9999; described."""
    data = np.full((3, SIZE, SIZE), 100, np.int16)
    data[0, :, :16] = 0
    data[0, 40:, :] = -9999  # data in band 1
    data[1, :8, :] = 0
    data[1, 56:, :] = -9999
    data[2, :, 48:] = -9999
    data[2, :16, :] = 0  # data in band 3
    path = write_geotiff(src / "pam.tif", data, crs=UTM, transform=TRANSFORM)
    bands = [("Red", "0"), ("Near infrared", None), ("Quality", "-9999")]
    xml = "".join(
        f'  <PAMRasterBand band="{i}">\n    <Description>{name}</Description>\n'
        + (f"    <NoDataValue>{nodata}</NoDataValue>\n" if nodata is not None else "")
        + ("    <ColorInterp>Red</ColorInterp>\n" if name == "Red" else "")
        + "  </PAMRasterBand>\n"
        for i, (name, nodata) in enumerate(bands, start=1)
    )
    Path(f"{path}.aux.xml").write_text(f"<PAMDataset>\n{xml}</PAMDataset>\n")
    return path


def _png_with_prj(src: Path) -> Path:
    """An RGB PNG placed by a world file and a `.prj` (GDAL's PNG driver reads the world
    file, not the .prj, so byod stages a copy with the CRS), per-band nodata in its
    `.aux.xml`: red 0, green 255, blue none."""
    data = np.full((3, SIZE, SIZE), 5, np.uint8)
    data[0, :, :10] = 0
    data[1, :, 50:] = 255
    data[1, :, 20:30] = 0  # data in green
    data[2, 40:, :] = 0  # data in blue
    path = src / "scan.png"
    with rasterio.open(path, "w", driver="PNG", width=SIZE, height=SIZE, count=3,
                       dtype="uint8") as dst:  # fmt: skip
        dst.write(data)
    Path(f"{path}.aux.xml").unlink(missing_ok=True)
    a, b, c, d, e, f = TRANSFORM[:6]
    path.with_suffix(".pgw").write_text(f"{a}\n{d}\n{b}\n{e}\n{c + a / 2}\n{f + e / 2}\n")
    path.with_suffix(".prj").write_text(CRS.from_string(UTM).to_wkt(version="WKT1_ESRI"))
    Path(f"{path}.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand>'
        '<PAMRasterBand band="2"><NoDataValue>255</NoDataValue></PAMRasterBand></PAMDataset>'
    )
    return path


def _same_nodata(src: Path) -> Path:
    """Three bands, one nodata (65535) for all, valid areas differing per band: one COG."""
    data = np.full((3, SIZE, SIZE), 7, np.uint16)
    data[0, :, :10] = 65535
    data[1, :20, :] = 65535
    data[2, 30:40, 30:40] = 65535
    return write_geotiff(src / "same.tif", data, crs=UTM, transform=TRANSFORM, nodata=65535)


def _masked_vrt(src: Path) -> tuple[Path, Path]:
    """Bands with masks of their own (a VRT's per-band <MaskBand> from GeoTIFFs' internal
    masks), two bands and one: rio-cogeo drops per-band masks, every pixel then valid."""
    mask1 = np.zeros((SIZE, SIZE), bool)
    mask1[:, :40] = True
    mask2 = np.zeros((SIZE, SIZE), bool)
    mask2[10:50, 30:] = True
    _one_band(src / "masked" / "m1.tif", np.full((SIZE, SIZE), 9, np.uint8), mask=mask1)
    _one_band(src / "masked" / "m2.tif", np.full((SIZE, SIZE), 11, np.uint8), mask=mask2)
    pair = [_vrt_band(i, f"m{i}.tif", "Byte", mask=True) for i in (1, 2)]
    two = _write_vrt(src / "masked" / "pair.vrt", pair)
    one = _write_vrt(src / "masked" / "single.vrt", [_vrt_band(1, "m2.tif", "Byte", mask=True)])
    return two, one


def _pam(path: Path, bands: list[dict[str, str]]) -> None:
    """Per-band NoDataValue / ColorInterp in a `.aux.xml`, as GDAL's PAM writes them."""
    xml = "".join(
        f'<PAMRasterBand band="{i}">'
        + "".join(f"<{tag}>{value}</{tag}>" for tag, value in band.items())
        + "</PAMRasterBand>"
        for i, band in enumerate(bands, start=1)
    )
    Path(f"{path}.aux.xml").write_text(f"<PAMDataset>{xml}</PAMDataset>")


def _mask_plus_nodata(src: Path) -> tuple[Path, Path]:
    """A GeoTIFF's internal (per-dataset) mask over columns 0-47 and per-band nodata in its
    `.aux.xml` (1 and 2), and one with the same nodata (1) on both bands. GDAL reads both by
    the mask and ignores the nodata: 1s and 2s inside the mask are data."""
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:, :48] = True
    data = np.full((2, SIZE, SIZE), 5, np.uint16)
    data[0, :6] = 1
    data[1, :, 20:24] = 2
    plus = write_geotiff(src / "maskplus.tif", data, mask=mask, crs=UTM, transform=TRANSFORM)
    _pam(plus, [{"NoDataValue": "1"}, {"NoDataValue": "2"}])
    same = write_geotiff(src / "masksame.tif", data, mask=mask, crs=UTM, transform=TRANSFORM)
    _pam(same, [{"NoDataValue": "1"}, {"NoDataValue": "1"}])
    return plus, same


def _rgba(src: Path) -> Path:
    """RGBA, alpha 0 on columns 40-63, nodata 7 on red only (PAM): red's nodata and the
    others' alpha differ, so the bands are split; the alpha is their mask, not a band."""
    data = np.full((4, SIZE, SIZE), 80, np.uint8)
    data[3] = 255
    data[3, :, 40:] = 0
    data[0, :10, :] = 7
    path = write_geotiff(src / "rgba.tif", data, crs=UTM, transform=TRANSFORM, photometric="RGB")
    _pam(path, [{"NoDataValue": "7", "ColorInterp": "Red"}, {"ColorInterp": "Green"},
                {"ColorInterp": "Blue"}, {"ColorInterp": "Alpha"}])  # fmt: skip
    return path


def _masked_nodata_vrt(src: Path) -> Path:
    """A VRT whose band 1 has nodata 0 and a mask of its own (GDAL reads it by the mask),
    band 2 nodata 255 only: split, band 1's COG keeping its mask's validity."""
    one = np.full((SIZE, SIZE), 0, np.uint8)
    one[:, 30:] = 40
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:, :40] = True
    _one_band(src / "masknd" / "m1.tif", one, mask=mask)
    two = np.full((SIZE, SIZE), 255, np.uint8)
    two[20:, :] = 3
    _one_band(src / "masknd" / "m2.tif", two, nodata=255)
    return _write_vrt(src / "masknd" / "stack.vrt", [
        _vrt_band(1, "m1.tif", "Byte", "0", mask=True),
        _vrt_band(2, "m2.tif", "Byte", "255")])  # fmt: skip


def _empty_band_one(src: Path) -> tuple[Path, Path]:
    """Band 1 all nodata, band 2 valid on columns 0-29 (uint8, nodata 0 / 255); and float
    bands, band 1 all NaN (nodata nan), band 2 -9999 (its nodata) on rows 0-19."""
    data = np.zeros((2, SIZE, SIZE), np.uint8)
    data[1] = 40
    data[1, :, 30:] = 255
    ints = write_geotiff(src / "empty_b1.tif", data, crs=UTM, transform=TRANSFORM)
    _pam(ints, [{"NoDataValue": "0"}, {"NoDataValue": "255"}])
    floats = np.full((2, SIZE, SIZE), np.nan, np.float32)
    floats[1] = 3.0
    floats[1, :20] = -9999
    nans = write_geotiff(src / "nan_b1.tif", floats, crs=UTM, transform=TRANSFORM)
    _pam(nans, [{"NoDataValue": "nan"}, {"NoDataValue": "-9999"}])
    return ints, nans


DESCRIPTIONS = {"nonascii": ["Grün", "日本語"], "swap": ["b2", "b1"],
                "long": ["x" * 240 + "1", "x" * 240 + "2"]}  # fmt: skip


def _described(src: Path) -> None:
    """Two int16 bands split by nodata (0 and -1), described as DESCRIPTIONS says; band 1
    holds 3s, band 2 holds 4s."""
    for name, descriptions in DESCRIPTIONS.items():
        data = np.stack([np.full((SIZE, SIZE), 3, np.int16), np.full((SIZE, SIZE), 4, np.int16)])
        data[0, :5] = 0
        data[1, :, :5] = -1
        path = write_geotiff(src / f"desc_{name}.tif", data, crs=UTM, transform=TRANSFORM)
        _pam(path, [{"NoDataValue": "0", "Description": descriptions[0]},
                    {"NoDataValue": "-1", "Description": descriptions[1]}])  # fmt: skip


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    root = tmp_path_factory.mktemp("band-nodata")
    src = root / "src"
    _erdas(src, _separate_vrt(src))
    _pam_tiff(src)
    _png_with_prj(src)
    _same_nodata(src)
    _masked_vrt(src)
    _mask_plus_nodata(src)
    _rgba(src)
    _masked_nodata_vrt(src)
    _empty_band_one(src)
    _described(src)
    settings = IngestSettings(source=str(src), collection="test", target=str(root / "data"),
                              catalog=str(root / "catalog"), workers=2, timeout_s=120)  # fmt: skip
    report = ingest(settings)
    return root, report


def _item(root: Path, item_id: str) -> dict[str, Any]:
    path = item_files(root / "catalog", "test")[item_id]
    return {**json.loads(path.read_text()), "_path": str(path)}


def _cog(item: dict[str, Any], key: str) -> Path:
    return (Path(item["_path"]).parent / item["assets"][key]["href"]).resolve()


def _data_keys(item: dict[str, Any]) -> list[str]:
    return [k for k, a in item["assets"].items() if "data" in a.get("roles", [])]


def _expected_nodata(value: float | None, dtype: str) -> float | int | None:
    return None if value is None else (int(value) if "int" in dtype else value)


def _assert_bands_told_truly(root: Path, item_id: str, source: Path, keys: list[str]) -> None:
    """Each input band is one asset's COG: same valid pixels (GDAL's per-band mask of the
    input) with the same values, the asset's raster:bands nodata the input band's nodata."""
    item = _item(root, item_id)
    assert _data_keys(item) == keys
    with rasterio.open(source) as src:
        for index, key in enumerate(keys, start=1):
            band = item["assets"][key]["raster:bands"]
            assert len(band) == 1
            expected = _expected_nodata(src.nodatavals[index - 1], src.dtypes[index - 1])
            assert band[0].get("nodata") == expected, (key, band)
            with rasterio.open(_cog(item, key)) as cog:
                assert cog.count == 1
                assert cog.nodata == src.nodatavals[index - 1]
                valid = src.read_masks(index) > 0
                np.testing.assert_array_equal(cog.read_masks(1) > 0, valid)
                # Masked pixels' values are not kept (rio-cogeo writes 0 under a mask).
                np.testing.assert_array_equal(cog.read(1)[valid], src.read(index)[valid])


def _pixel_centres(mask: np.ndarray) -> list[Point]:
    """Lon/lat points of the centres of the True pixels of a SIZE x SIZE mask."""
    rows, cols = np.nonzero(mask)
    xs, ys = TRANSFORM * (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(xs, ys)
    return [Point(x, y) for x, y in zip(lon, lat, strict=True)]


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` dilated by `pixels` in every direction (square neighbourhood)."""
    out = mask.copy()
    for dr in range(-pixels, pixels + 1):
        for dc in range(-pixels, pixels + 1):
            shifted = np.zeros_like(mask)
            rs, cs = slice(max(dr, 0), SIZE + min(dr, 0)), slice(max(dc, 0), SIZE + min(dc, 0))
            rd = slice(max(-dr, 0), SIZE + min(-dr, 0))
            cd = slice(max(-dc, 0), SIZE + min(-dc, 0))
            shifted[rs, cs] = mask[rd, cd]
            out |= shifted
    return out


def _assert_footprint_is_union(root: Path, item_id: str, source: Path) -> None:
    """The footprint holds every pixel valid in any input band, and no pixel centre two
    pixels or more away from them (it is traced outward by about one pixel)."""
    with rasterio.open(source) as src:
        union = np.logical_or.reduce([src.read_masks(i) > 0 for i in src.indexes])
    assert union.any()
    geometry = shape(_item(root, item_id)["geometry"])
    assert all(geometry.covers(p) for p in _pixel_centres(union))
    assert not any(geometry.contains(p) for p in _pixel_centres(~_grown(union, 2)))


def test_every_input_is_ingested(ingested: tuple[Path, Report]) -> None:
    root, report = ingested
    rows = {r.input: r for r in report.rows}
    assert {r.status for r in rows.values()} == {Status.INGESTED}, rows
    assert any("one COG per band" in n for n in rows["separate/stack.vrt"].notes)
    assert validate_catalog(str(root / "catalog" / "catalog.json"))[1] == []


def test_separate_vrt_one_cog_per_band(ingested: tuple[Path, Report]) -> None:
    """gdalbuildvrt -separate: nodata 0 and 255 on the two bands."""
    root, _ = ingested
    source = root / "src" / "separate" / "stack.vrt"
    _assert_bands_told_truly(root, "separate-stack", source, ["b1", "b2"])
    _assert_footprint_is_union(root, "separate-stack", source)


def test_erdas_imagine_nodata_per_band(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    source = root / "src" / "erdas.img"
    with rasterio.open(source) as src:
        assert src.nodatavals == (0.0, 255.0)
        assert src.descriptions == ("Layer_1", "Layer_2")  # HFA names its layers
    _assert_bands_told_truly(root, "erdas", source, ["layer_1", "layer_2"])
    _assert_footprint_is_union(root, "erdas", source)


def test_pam_nodata_some_bands_none(ingested: tuple[Path, Report]) -> None:
    """Per-band NoDataValue in the .aux.xml, band 2 with none: assets named by description,
    band 2's zeros and -9999s stay data, band 2's asset declares no nodata."""
    root, _ = ingested
    source = root / "src" / "pam.tif"
    with rasterio.open(source) as src:  # the fixture is what GDAL reads it as
        assert src.nodatavals == (0.0, None, -9999.0)
        colors = [c.name for c in src.colorinterp]
    _assert_bands_told_truly(root, "pam", source, ["red", "near-infrared", "quality"])
    # Band 1 is red in the input: its one-band COG's asset still says so.
    assert colors[0] == "red"
    assets = _item(root, "pam")["assets"]
    assert [b.get("common_name") for b in assets["red"]["eo:bands"]] == [colors[0]]
    _assert_footprint_is_union(root, "pam", source)  # band 2 has no nodata: all of it


def test_staged_png_keeps_per_band_nodata(ingested: tuple[Path, Report]) -> None:
    """A PNG staged with its .prj's CRS: the staged copy keeps each band's nodata."""
    root, _ = ingested
    source = root / "src" / "scan.png"
    with rasterio.open(source) as src:
        assert src.nodatavals == (0.0, 255.0, None) and src.crs is None
    _assert_bands_told_truly(root, "scan", source, ["b1", "b2", "b3"])
    _assert_footprint_is_union(root, "scan", source)
    assert _item(root, "scan")["properties"]["proj:code"] == UTM


def test_per_band_masks_one_cog_per_band(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    source = root / "src" / "masked" / "pair.vrt"
    with rasterio.open(source) as src:
        assert [flags for flags in src.mask_flag_enums] == [[], []]  # masks of their own
    _assert_bands_told_truly(root, "masked-pair", source, ["b1", "b2"])
    _assert_footprint_is_union(root, "masked-pair", source)


def test_single_band_with_own_mask_keeps_it(ingested: tuple[Path, Report]) -> None:
    """One band with a mask of its own stays one `data` COG, its mask now internal."""
    root, _ = ingested
    source = root / "src" / "masked" / "single.vrt"
    _assert_bands_told_truly(root, "masked-single", source, ["data"])
    _assert_footprint_is_union(root, "masked-single", source)


def test_same_nodata_stays_one_cog(ingested: tuple[Path, Report]) -> None:
    """Regression: bands sharing one nodata are one COG `data`, every band's validity kept."""
    root, _ = ingested
    item = _item(root, "same")
    assert _data_keys(item) == ["data"]
    with rasterio.open(root / "src" / "same.tif") as src, rasterio.open(_cog(item, "data")) as cog:
        assert cog.count == src.count and cog.nodatavals == src.nodatavals
        for i in src.indexes:
            np.testing.assert_array_equal(cog.read(i), src.read(i))
            np.testing.assert_array_equal(cog.read_masks(i) > 0, src.read_masks(i) > 0)
        assert [b["nodata"] for b in item["assets"]["data"]["raster:bands"]] == [65535] * 3
    _assert_footprint_is_union(root, "same", root / "src" / "same.tif")


def _assert_validity(root: Path, item_id: str, expected: dict[str, list[np.ndarray]]) -> None:
    """Each asset's COG band valid exactly where `expected` says, declaring no nodata (its
    internal mask tells validity), and the footprint the union of them."""
    item = _item(root, item_id)
    assert _data_keys(item) == list(expected)
    for key, masks in expected.items():
        assert all("nodata" not in b for b in item["assets"][key]["raster:bands"])
        with rasterio.open(_cog(item, key)) as cog:
            assert cog.count == len(masks) and cog.nodata is None
            for i, valid in enumerate(masks, start=1):
                np.testing.assert_array_equal(cog.read_masks(i) > 0, valid, err_msg=key)
    union = np.logical_or.reduce([m for masks in expected.values() for m in masks])
    geometry = shape(item["geometry"])
    assert all(geometry.covers(p) for p in _pixel_centres(union))
    assert not any(geometry.contains(p) for p in _pixel_centres(~_grown(union, 2)))


def test_dataset_mask_wins_over_nodata(ingested: tuple[Path, Report]) -> None:
    """GDAL ignores nodata when the dataset has a mask: one COG, the mask kept (rio-cogeo
    took the nodata and dropped the mask, and byod split bands whose masks agree)."""
    root, _ = ingested
    for name in ("maskplus", "masksame"):
        with rasterio.open(root / "src" / f"{name}.tif") as src:
            assert all(f == [MaskFlags.per_dataset] for f in src.mask_flag_enums)
            masks = [src.read_masks(i) > 0 for i in src.indexes]
        assert masks[0].sum() == SIZE * 48  # the mask, not the nodata
        _assert_validity(root, name, {"data": masks})


def test_band_mask_wins_over_its_nodata(ingested: tuple[Path, Report]) -> None:
    """A split band with nodata and a mask of its own keeps GDAL's reading: the mask."""
    root, _ = ingested
    with rasterio.open(root / "src" / "masknd" / "stack.vrt") as src:
        masks = [src.read_masks(i) > 0 for i in src.indexes]
    assert masks[0][:, :30].all()  # 0s inside the mask are data
    item = _item(root, "masknd-stack")
    assert _data_keys(item) == ["b1", "b2"]
    with rasterio.open(_cog(item, "b1")) as one, rasterio.open(_cog(item, "b2")) as two:
        np.testing.assert_array_equal(one.read_masks(1) > 0, masks[0])
        np.testing.assert_array_equal(two.read_masks(1) > 0, masks[1])
        assert one.nodata is None and two.nodata == 255


def test_alpha_is_each_bands_mask(ingested: tuple[Path, Report]) -> None:
    """RGBA split by red's nodata: no asset for the alpha band; each colour band's COG is
    valid where its own GDAL mask (red: its nodata) AND the alpha are; the footprint leaves
    out the alpha-0 columns."""
    root, _ = ingested
    with rasterio.open(root / "src" / "rgba.tif") as src:
        alpha = src.read(4) > 0
        with warnings.catch_warnings():  # GDAL reads red by its nodata, ignoring the alpha
            warnings.simplefilter("ignore")
            masks = [(src.read_masks(i) > 0) & alpha for i in (1, 2, 3)]
    assert not masks[0][:10].any() and not masks[1][:, 40:].any()
    _assert_validity(root, "rgba", {f"b{i}": [m] for i, m in enumerate(masks, start=1)})


def test_thumbnail_from_first_band_with_data(ingested: tuple[Path, Report]) -> None:
    """Band 1 holds no valid pixel: the thumbnail shows band 2 (opaque where GDAL reads band
    2 as valid), not a fully transparent band 1."""
    root, _ = ingested
    for name in ("empty_b1", "nan_b1"):
        with rasterio.open(root / "src" / f"{name}.tif") as src:
            assert not (src.read_masks(1) > 0).any()
            valid = (src.read_masks(2) > 0) & np.isfinite(src.read(2))
        assert valid.any()
        item = _item(root, name)
        with Image.open(_cog(item, "thumbnail")) as png:
            alpha = np.asarray(png.convert("RGBA"))[..., 3]
        assert alpha.shape == (SIZE, SIZE)  # a 64 px raster is its own thumbnail size
        np.testing.assert_array_equal(alpha > 0, valid, err_msg=name)


@pytest.mark.parametrize("name", list(DESCRIPTIONS))
def test_band_keys_from_descriptions(ingested: tuple[Path, Report], name: str) -> None:
    """Keys that say which band they hold, and fit a file name: descriptions with no ASCII
    letter ("日本語" became `item`) and descriptions `b2`, `b1` (asset b1 held band 2) give
    b1..bN; 241-character descriptions (file names over 255 bytes: storage_failed) are cut
    to 64 characters with a hash, still distinct. Each asset holds its band's values."""
    root, report = ingested
    row = next(r for r in report.rows if r.input == f"desc_{name}.tif")
    assert row.status is Status.INGESTED, row.message
    source = root / "src" / f"desc_{name}.tif"
    item = _item(root, f"desc_{name}")
    keys = _data_keys(item)
    if name == "long":
        assert len(keys) == 2 and len(set(keys)) == 2
        assert all(len(k) <= 64 and k.startswith("xxxx") for k in keys)
    else:
        assert keys == ["b1", "b2"]
    with rasterio.open(source) as src:
        for index, key in enumerate(keys, start=1):
            with rasterio.open(_cog(item, key)) as cog:
                valid = src.read_masks(index) > 0
                np.testing.assert_array_equal(cog.read(1)[valid], src.read(index)[valid])
                np.testing.assert_array_equal(cog.read_masks(1) > 0, valid)
