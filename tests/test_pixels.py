"""Pixels and how items describe them: data types (complex SAR data included), thumbnails
stretched to each type's real values with NaN excluded, units/scale/offset of NetCDF
variables, `proj:epsg`, and `raster:bands[].spatial_resolution` in metres.

Expected values come from the source files (rasterio), pyproj (Geod, unit factors) and
the raster extension's data type names, never from byod's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
import rasterio.crs
import rasterio.shutil
from PIL import Image
from pyproj import CRS
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from byod.report import Report, Status
from byod.samples import write_samples
from byod.validate import OfflineValidator, validate_catalog
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files

PROJECTION_V1_2 = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"


def _items(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The collection's items as JSON, found through its item links (as a client finds them),
    each with its own path under "_path"."""
    out = {}
    for path in item_files(tmp_path / "catalog", "test").values():  # through the months
        item = json.loads(path.read_text())
        out[item["id"]] = {**item, "_path": str(path)}
    return out


def _asset_path(tmp_path: Path, item: dict[str, Any], key: str) -> Path:
    return (Path(item["_path"]).parent / item["assets"][key]["href"]).resolve()


def _thumbnail(tmp_path: Path, item: dict[str, Any]) -> np.ndarray:
    """The thumbnail as (rows, cols, channels) with alpha last."""
    return np.asarray(Image.open(_asset_path(tmp_path, item, "thumbnail")))


def _catalog_is_valid(tmp_path: Path) -> None:
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []
    # A pystac walk: every item reads back and validates (offline, with byod's schemas).
    root = pystac.Catalog.from_file(str(tmp_path / "catalog" / "catalog.json"))
    items = list(root.get_items(recursive=True))
    assert items
    for item in items:
        pystac.validation.validate_dict(item.to_dict(), validator=OfflineValidator())


# --- complex data (SAR single-look complex) -------------------------------------------------


def _cint32_tiff(path: Path, re: np.ndarray, im: np.ndarray) -> None:
    """A CInt32 GeoTIFF: rasterio has no CInt32 type, so GDAL copies it from a raw VRT."""
    raw = np.stack([re, im], axis=-1).astype("<i4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".raw").write_bytes(raw.tobytes())
    rows, cols = re.shape
    path.with_suffix(".vrt").write_text(
        f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="CInt32" band="1" subClass="VRTRawRasterBand">'
        f'<SourceFilename relativetoVRT="1">{path.with_suffix(".raw").name}</SourceFilename>'
        f"<ImageOffset>0</ImageOffset><PixelOffset>8</PixelOffset>"
        f"<LineOffset>{8 * cols}</LineOffset></VRTRasterBand></VRTDataset>"
    )
    rasterio.shutil.copy(path.with_suffix(".vrt"), path, driver="GTiff")
    for suffix in (".vrt", ".raw"):
        path.with_suffix(suffix).unlink()


# rasterio's name of the type written -> the raster extension's name for what the COG holds.
COMPLEX_TYPES = {
    "complex64": "cfloat32",
    "complex128": "cfloat64",
    "complex_int16": "cint16",
    # rasterio reads GDAL's CInt32 as complex64 and rio-cogeo writes that: the COG is
    # CFloat32 (exact for the integer values of SAR data below 2**24).
    "cint32": "cfloat32",
}


@pytest.mark.parametrize("dtype", list(COMPLEX_TYPES))
def test_complex_rasters_are_ingested_with_a_magnitude_thumbnail(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster, dtype: str
) -> None:
    rows, cols = 64, 64
    # Left half: purely imaginary, magnitude 1000; right half: real 100, magnitude 100. A
    # thumbnail of the real part would show the left half darker than the right.
    re = np.where(np.arange(cols) < cols // 2, 0, 100) * np.ones((rows, 1))
    im = np.where(np.arange(cols) < cols // 2, 1000, 0) * np.ones((rows, 1))
    re = re + np.arange(rows)[:, None]  # not constant: a real stretch
    name = f"slc_{dtype}_20240101.tif"
    if dtype == "cint32":
        _cint32_tiff(tmp_path / "src" / name, re, im)
    else:
        data = (re + 1j * im).astype("complex64" if dtype == "complex_int16" else dtype)
        write_raster(name, data, dtype=dtype)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    (band,) = item["assets"]["data"]["raster:bands"]
    assert band["data_type"] == COMPLEX_TYPES[dtype]
    with (
        rasterio.open(tmp_path / "src" / name) as src,
        rasterio.open(_asset_path(tmp_path, item, "data")) as cog,
    ):
        np.testing.assert_array_equal(cog.read(1), src.read(1))
    thumb = _thumbnail(tmp_path, item)
    grey, alpha = thumb[..., 0].astype(float), thumb[..., -1]
    assert (alpha == 255).all()
    assert grey[:, : cols // 2].mean() > grey[:, cols // 2 :].mean() + 100
    _catalog_is_valid(tmp_path)


# --- thumbnails stretch every data type -----------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [
        ("uint8", 0, 99),  # a classified or percent band: must not look near-black
        ("uint8", 200, 255),
        ("int8", -50, 50),
        ("uint16", 0, 4000),
        ("int16", -2000, -1000),
        ("uint32", 10**6, 10**6 + 500),
        ("int32", -(10**6), 10**6),
        ("float32", -0.002, 0.003),
        ("float64", 1e6, 1e6 + 1),
    ],
)
def test_thumbnails_stretch_each_type_to_its_values(
    tmp_path: Path,
    run_ingest: Callable[..., Report],
    write_raster: WriteRaster,
    dtype: str,
    low: float,
    high: float,
) -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    data = (low + (high - low) * (xx + yy) / 126).astype(dtype)
    write_raster("band_20240101.tif", data)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    grey = _thumbnail(tmp_path, item)[..., 0].astype(float)
    assert grey.shape == data.shape
    # The thumbnail uses the grey scale (not a sliver of it) and follows the data.
    assert grey.min() <= 10 and grey.max() >= 245
    assert np.corrcoef(grey.ravel(), data.astype(float).ravel())[0, 1] > 0.98


def test_thumbnail_excludes_nan_without_a_nodata_tag(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    data = ramp(64, 64, "float32")[0]
    data[:, :20] = np.nan
    data[40:, :] = np.nan
    write_raster("sst_20240101.tif", data)  # no nodata tag
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    thumb = _thumbnail(tmp_path, item)
    np.testing.assert_array_equal(thumb[..., -1] == 0, np.isnan(data))
    grey = thumb[..., 0][~np.isnan(data)].astype(float)
    assert grey.min() <= 10 and grey.max() >= 245


def test_rgb_thumbnail_keeps_colour_balance(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    """One stretch for the three bands: a reddish image stays reddish."""
    yy, xx = np.mgrid[0:64, 0:64]
    rgb = np.stack([60 + (xx % 20), 20 + (yy % 10), 10 + (xx % 5)]).astype("uint8")
    write_raster("rgb_20240101.tif", rgb, photometric="RGB")
    run_ingest()
    (item,) = _items(tmp_path).values()
    thumb = _thumbnail(tmp_path, item).astype(float)
    red, green, blue = (thumb[..., i].mean() for i in range(3))
    assert red > green > blue
    assert thumb[..., :3].max() >= 245


# --- units, scale and offset ----------------------------------------------------------------


def test_netcdf_units_scale_offset_reach_the_item_and_the_cog(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    path = tmp_path / "src" / "era5_20240101.nc"
    path.parent.mkdir(parents=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", 20)
        ds.createDimension("lon", 30)
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat[:] = 50.0 - 0.25 * np.arange(20)
        lat.units, lat.standard_name = "degrees_north", "latitude"
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon[:] = 10.0 + 0.25 * np.arange(30)
        lon.units, lon.standard_name = "degrees_east", "longitude"
        crs = ds.createVariable("crs", "i4")
        crs.grid_mapping_name = "latitude_longitude"
        crs.crs_wkt = CRS.from_epsg(4326).to_wkt()
        for name, units, scale, offset in (("t2m", "K", 0.01, 250.0), ("tp", "m", 1e-5, 0.0)):
            var = ds.createVariable(name, "i2", ("lat", "lon"))
            var.set_auto_maskandscale(False)
            var.grid_mapping = "crs"
            var.units, var.scale_factor, var.add_offset = units, scale, offset
            var[:] = np.arange(600, dtype="i2").reshape(20, 30)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    items = _items(tmp_path)
    for key, units, scale, offset in (("t2m", "K", 0.01, 250.0), ("tp", "m", 1e-5, 0.0)):
        item = items[f"era5_20240101-{key}"]
        (band,) = item["assets"]["data"]["raster:bands"]
        assert band["unit"] == units
        assert band["scale"] == pytest.approx(scale)
        assert band.get("offset", 0.0) == pytest.approx(offset)
        with rasterio.open(_asset_path(tmp_path, item, "data")) as cog:
            assert cog.units == (units,)
            assert cog.scales[0] == pytest.approx(scale)
            assert cog.offsets[0] == pytest.approx(offset)
    _catalog_is_valid(tmp_path)


# --- proj:epsg --------------------------------------------------------------------------------


def test_proj_epsg_beside_proj_code_survives_re_publishing(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    write_raster("utm_20240101.tif", ramp(32, 32))
    custom = CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +a=6370000 +b=6370000 +units=m")
    write_raster("custom_20240101.tif", ramp(32, 32), crs=custom.to_wkt(),
                 transform=from_origin(0, 0, 100, 100))  # fmt: skip
    run_ingest()
    # A second input added later: the first items are read back and published again.
    write_raster("later_20240102.tif", ramp(32, 32), crs="EPSG:3035",
                 transform=from_origin(4500000, 2800000, 100, 100))  # fmt: skip
    run_ingest()
    items = _items(tmp_path)
    for item_id, epsg in (("utm_20240101", 32633), ("later_20240102", 3035)):
        props = items[item_id]["properties"]
        assert props["proj:code"] == f"EPSG:{epsg}"
        assert props["proj:epsg"] == epsg and isinstance(props["proj:epsg"], int)
        assert PROJECTION_V1_2 in items[item_id]["stac_extensions"]
    custom_props = items["custom_20240101"]["properties"]
    assert custom_props["proj:code"] is None and "proj:epsg" not in custom_props
    assert CRS.from_wkt(custom_props["proj:wkt2"]).equals(custom)
    _catalog_is_valid(tmp_path)


# --- spatial resolution in metres ---------------------------------------------------------


def _centre_ground_sides(crs: CRS, transform: Any, rows: int, cols: int, unit: float) -> float:
    """The longer ground side of the centre pixel, with pyproj's Geod on the CRS ellipsoid;
    `unit` is the size of the CRS's angular unit in degrees."""
    lon, lat = (v * unit for v in transform * (cols / 2, rows / 2))
    geod = crs.get_geod()
    assert geod is not None
    sides = [geod.inv(lon, lat, lon + transform.a * unit, lat)[2],
             geod.inv(lon, lat, lon, lat + transform.e * unit)[2]]  # fmt: skip
    return max(sides)


@pytest.mark.parametrize(
    ("crs", "transform", "unit"),
    [
        ("EPSG:4326", from_origin(16.0, 60.5, 0.001, 0.001), 1.0),  # 60 N: 55.8 m x 111.4 m
        ("EPSG:4326", from_origin(-60.0, 0.1, 0.0002, 0.0002), 1.0),
        ("EPSG:4269", from_origin(-100.0, 45.0, 1 / 3600, 1 / 3600), 1.0),  # NAD83, 1"
        ("EPSG:4807", from_origin(2.5, 54.0, 0.001, 0.001), 0.9),  # NTF (Paris): grads
    ],
)
def test_geographic_spatial_resolution_is_ground_metres(
    tmp_path: Path,
    run_ingest: Callable[..., Report],
    write_raster: WriteRaster,
    crs: str,
    transform: Any,
    unit: float,
) -> None:
    write_raster("geo_20240101.tif", ramp(40, 50), crs=crs, transform=transform)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    (band,) = item["assets"]["data"]["raster:bands"]
    expected = _centre_ground_sides(CRS.from_user_input(crs), transform, 40, 50, unit)
    assert band["spatial_resolution"] == pytest.approx(expected, rel=1e-6)
    assert band["spatial_resolution"] > 1  # metres, never degrees


@pytest.mark.parametrize(
    ("crs", "pixel", "metres"),
    [
        ("EPSG:32633", 10.0, 10.0),
        # NAD83 / New York Long Island (ftUS): a US survey foot is 1200/3937 m.
        ("EPSG:2263", 100.0, 100.0 * 1200 / 3937),
    ],
)
def test_projected_spatial_resolution_in_metres(
    tmp_path: Path,
    run_ingest: Callable[..., Report],
    write_raster: WriteRaster,
    crs: str,
    pixel: float,
    metres: float,
) -> None:
    x0, y0 = (500000, 5000000) if crs == "EPSG:32633" else (980000, 200000)
    write_raster("grid_20240101.tif", ramp(32, 32), crs=crs,
                 transform=from_origin(x0, y0, pixel, pixel))  # fmt: skip
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    (band,) = item["assets"]["data"]["raster:bands"]
    assert band["spatial_resolution"] == pytest.approx(metres, rel=1e-9)


def test_thumbnail_reads_overviews_of_a_large_raster(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    """A raster larger than the thumbnail: stretched from the overview the COG has."""
    data = ramp(1024, 1024, "uint8")[0] % 100
    write_raster("big_20240101.tif", data)
    run_ingest()
    (item,) = _items(tmp_path).values()
    thumb = _thumbnail(tmp_path, item)
    assert thumb.shape[:2] == (256, 256)
    with rasterio.open(_asset_path(tmp_path, item, "data")) as cog:
        small = cog.read(1, out_shape=(256, 256), resampling=Resampling.nearest)
    assert np.corrcoef(thumb[..., 0].ravel(), small.ravel())[0, 1] > 0.98


# --- the demo's samples -----------------------------------------------------------------------


def _real_cog(path: Path) -> bool:
    """rio-cogeo's strict validation plus the layout it lets through for small files: tiled,
    compressed, and internal overviews when larger than one tile."""
    if not cog_validate(str(path), strict=True, quiet=True)[0]:
        return False
    with rasterio.open(path) as src:
        rows, cols = src.block_shapes[0]
        tiled = not (cols == src.width and rows < src.height)  # strips are full-width
        one_tile = src.width <= cols and src.height <= rows
        overviews = all(src.overviews(i) for i in src.indexes)
        return bool(tiled and src.compression is not None and (overviews or one_tile))


def test_demo_samples_are_converted_but_the_real_cog(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    src = tmp_path / "src"
    paths = write_samples(src)
    real = {p.relative_to(src).as_posix() for p in paths if _real_cog(p)}
    assert real == {"ready_cog_20240201.tif"}
    report = run_ingest()
    assert all(r.status is Status.INGESTED for r in report.rows), report.rows
    items = _items(tmp_path)
    converted = 0
    for item in items.values():
        source = item["properties"]["byod:source"]
        passthrough = item["properties"]["byod:cog_passthrough"]
        assert passthrough == (source in real), source
        for key in item["assets"]:
            if key == "thumbnail":
                continue
            stored = _asset_path(tmp_path, item, key)
            if passthrough:
                assert stored.read_bytes() == (src / source).read_bytes()
            else:
                assert _real_cog(stored), (source, key)
        converted += not passthrough
    assert converted == len(items) - 1 and converted >= 6
    _catalog_is_valid(tmp_path)


def test_scene_assets_on_other_grids_keep_their_own_resolution(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    """A Sentinel-2 band-per-file scene: 10 m bands and a 20 m SCL. The SCL asset carries its
    own proj:shape/proj:transform (valid under projection v1.2.0) and a 20 m resolution."""
    stamp = "T33UXP_20240605T100031"
    for band in ("B02", "B03", "B04"):
        write_raster(f"{stamp}_{band}_10m.tif", ramp(40, 40), nodata=0,
                     transform=from_origin(600000, 5340400, 10, 10))  # fmt: skip
    write_raster(f"{stamp}_SCL_20m.tif", np.full((20, 20), 4, "uint8"), nodata=0,
                 transform=from_origin(600000, 5340400, 20, 20))  # fmt: skip
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    assert item["properties"]["proj:epsg"] == 32633
    assert PROJECTION_V1_2 in item["stac_extensions"]
    scl = item["assets"]["SCL"]
    assert scl["proj:shape"] == [20, 20] and scl["raster:bands"][0]["spatial_resolution"] == 20
    assert item["assets"]["B04"]["raster:bands"][0]["spatial_resolution"] == 10
    _catalog_is_valid(tmp_path)


def test_paletted_band_thumbnail_uses_its_colour_table(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    """A land-cover map (uint8 classes with a GDAL colour table): each class in its colour,
    nodata transparent, rather than a grey stretch of class numbers."""
    yy, xx = np.mgrid[0:64, 0:64]
    classes = np.choose((xx // 22 + yy // 32) % 3, [10, 20, 30]).astype("uint8")
    classes[:, :5] = 0
    path = write_raster("landcover_20240101.tif", classes, nodata=0, photometric="palette")
    table = {0: (0, 0, 0, 0), 10: (0, 100, 0, 255), 20: (250, 230, 20, 255),
             30: (0, 80, 200, 255)}  # fmt: skip
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, table)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    thumb = _thumbnail(tmp_path, item)
    with rasterio.open(path) as src:
        source, colours = src.read(1), src.colormap(1)
    valid = source != 0
    expected = np.array([colours[v] for v in source[valid]], np.uint8)
    np.testing.assert_array_equal(thumb[valid][:, :3], expected[:, :3])
    assert (thumb[valid][:, 3] == 255).all() and (thumb[~valid][:, 3] == 0).all()


def test_gcp_raster_has_no_spatial_resolution_in_degrees(
    tmp_path: Path, run_ingest: Callable[..., Report], write_raster: WriteRaster
) -> None:
    """A raster placed by GCPs in EPSG:4326 has no geotransform to take a pixel size from:
    the field is left out rather than given in degrees."""
    path = write_raster("swath_20240101.tif", ramp(60, 80), crs=None)
    gcps = [GroundControlPoint(r, c, 16.0 + 0.004 * c, 48.0 - 0.003 * r)
            for r in (0, 30, 60) for c in (0, 40, 80)]  # fmt: skip
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    (item,) = _items(tmp_path).values()
    for band in item["assets"]["data"]["raster:bands"]:
        assert band.get("spatial_resolution", 1000.0) > 1.0
