"""Georeferencing kinds (issue 9): geotransform over RPCs, RPC-only and GCP-only rasters, GCP
swaths across 180°, authority codes by equivalence, COG pass-through only for real COGs.

One ingest of a folder holding every kind. Expected values are computed here independently:
from the analytic RPC model the fixtures are written with, from the GCPs' own positions and
GDAL's GCP transformer at full resolution, from pyproj's `CRS.equals`, from the TIFF layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
from pyproj import CRS, Transformer
from rasterio.control import GroundControlPoint
from rasterio.enums import Compression
from rasterio.rpc import RPC
from rasterio.transform import GCPTransformer, from_origin
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.ops import unary_union

from byod.analysis import UnrectifiedItems, load
from byod.cog import is_publishable_cog
from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.report import Report, Status
from byod.samples import write_samples
from tests.conftest import ramp, write_geotiff
from tests.readback import assert_all_ingested_and_walkable, asset_path, item_files

# An analytic RPC model: sample = (lon - LON0) / LON_SCALE * SAMP_SCALE + SAMP_OFF + a height
# term, line = -(lat - LAT0) / LAT_SCALE * LINE_SCALE + LINE_OFF. At HEIGHT_OFF (the average
# height the footprint uses without a DEM) the height term is 0, so the ground position of a
# pixel is known exactly without GDAL.
RPC_SIZE = (300, 400)  # rows, cols
LON0, LAT0, LON_SCALE, LAT_SCALE = -100.0, 35.0, 0.2, 0.15
HEIGHT_OFF, HEIGHT_SCALE = 1200.0, 500.0


def _rpc_model() -> RPC:
    rows, cols = RPC_SIZE
    samp_num = [0.0] * 20
    samp_num[1] = 1.0  # longitude
    samp_num[3] = 0.05  # height: shifts the image 10 px per 500 m
    line_num = [0.0] * 20
    line_num[2] = -1.0  # latitude, north up
    den = [1.0] + [0.0] * 19
    return RPC(height_off=HEIGHT_OFF, height_scale=HEIGHT_SCALE, lat_off=LAT0,
               lat_scale=LAT_SCALE, long_off=LON0, long_scale=LON_SCALE, line_off=rows / 2,
               line_scale=rows / 2, samp_off=cols / 2, samp_scale=cols / 2,
               line_num_coeff=line_num, line_den_coeff=den, samp_num_coeff=samp_num,
               samp_den_coeff=den, err_bias=-1.0, err_rand=-1.0)  # fmt: skip


def _rpc_lonlat(col: float, row: float) -> tuple[float, float]:
    """Ground position of an RPC image position (sample, line) at the average height."""
    rows, cols = RPC_SIZE
    return (LON0 + LON_SCALE * (col - cols / 2) / (cols / 2),
            LAT0 - LAT_SCALE * (row - rows / 2) / (rows / 2))  # fmt: skip


def _rpc_txt(rpc: RPC) -> str:
    """GDAL's `_RPC.TXT` sidecar: `KEY: value` lines, coefficients numbered 1..20."""
    lines = []
    for key, value in rpc.to_gdal().items():
        if key.endswith("_COEFF"):
            lines += [f"{key}_{i}: {c}" for i, c in enumerate(str(value).split(), 1)]
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def _rpb(rpc: RPC) -> str:
    """A DigitalGlobe `.RPB` sidecar, as QuickBird/WorldView products ship it."""

    def coefs(values: list[float]) -> str:
        return "(\n" + ",\n".join(f"\t\t\t{v:+.15E}" for v in values) + ")"

    return (
        'satId = "WV02";\nbandId = "P";\nSpecId = "RPC00B";\nBEGIN_GROUP = IMAGE\n'
        f"\terrBias = -1.0;\n\terrRand = -1.0;\n\tlineOffset = {rpc.line_off};\n"
        f"\tsampOffset = {rpc.samp_off};\n\tlatOffset = {rpc.lat_off};\n"
        f"\tlongOffset = {rpc.long_off};\n\theightOffset = {rpc.height_off};\n"
        f"\tlineScale = {rpc.line_scale};\n\tsampScale = {rpc.samp_scale};\n"
        f"\tlatScale = {rpc.lat_scale};\n\tlongScale = {rpc.long_scale};\n"
        f"\theightScale = {rpc.height_scale};\n"
        f"\tlineNumCoef = {coefs(rpc.line_num_coeff)};\n"
        f"\tlineDenCoef = {coefs(rpc.line_den_coeff)};\n"
        f"\tsampNumCoef = {coefs(rpc.samp_num_coeff)};\n"
        f"\tsampDenCoef = {coefs(rpc.samp_den_coeff)};\n"
        "END_GROUP = IMAGE\nEND;\n"
    )


def _dg_xml(rpc: RPC) -> str:
    """A DigitalGlobe product `.XML` (the `isd` document) with its RPB section, as GDAL's
    DigitalGlobe metadata reader reads it (gcore/mdreader/reader_digital_globe.cpp)."""

    def coefs(tag: str, values: list[float]) -> str:
        return f"<{tag}List><{tag}>{' '.join(f'{v:+.15E}' for v in values)}</{tag}></{tag}List>"

    image = (
        f"<ERRBIAS>-1.0</ERRBIAS><ERRRAND>-1.0</ERRRAND><LINEOFFSET>{rpc.line_off}</LINEOFFSET>"
        f"<SAMPOFFSET>{rpc.samp_off}</SAMPOFFSET><LATOFFSET>{rpc.lat_off}</LATOFFSET>"
        f"<LONGOFFSET>{rpc.long_off}</LONGOFFSET><HEIGHTOFFSET>{rpc.height_off}</HEIGHTOFFSET>"
        f"<LINESCALE>{rpc.line_scale}</LINESCALE><SAMPSCALE>{rpc.samp_scale}</SAMPSCALE>"
        f"<LATSCALE>{rpc.lat_scale}</LATSCALE><LONGSCALE>{rpc.long_scale}</LONGSCALE>"
        f"<HEIGHTSCALE>{rpc.height_scale}</HEIGHTSCALE>"
        + coefs("LINENUMCOEF", rpc.line_num_coeff)
        + coefs("LINEDENCOEF", rpc.line_den_coeff)
        + coefs("SAMPNUMCOEF", rpc.samp_num_coeff)
        + coefs("SAMPDENCOEF", rpc.samp_den_coeff)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<isd><RPB><SATID>WV02</SATID>'
        f"<BANDID>P</BANDID><SPECID>RPC00B</SPECID><IMAGE>{image}</IMAGE></RPB></isd>\n"
    )


UTM = from_origin(600000, 5340000, 30, 30)  # near Vienna, UTM 33N
KANSAS_GCPS = """
  <GCPList Projection="EPSG:4326">
    <GCP Id="1" Pixel="0" Line="0" X="-100" Y="35"/>
    <GCP Id="2" Pixel="700" Line="0" X="-99" Y="35"/>
    <GCP Id="3" Pixel="700" Line="600" X="-99" Y="34"/>
    <GCP Id="4" Pixel="0" Line="600" X="-100" Y="34"/>
  </GCPList>
"""
DG_SIZE = (600, 700)  # rows, cols

# GCPs of a Sentinel-1-like strip crossing 180°: longitudes run 179.0 -> 180.5 (written
# -179.5) across the swath, latitudes -15 -> -18 along it, the strip slanting eastwards.
STRIP = (120, 40)  # rows, cols


def _strip_lonlat(col: float, row: float) -> tuple[float, float]:
    rows, cols = STRIP
    return 179.0 + 1.5 * col / cols + 0.2 * row / rows, -15.0 - 3.0 * row / rows


LANDSAT_PS = (
    'PROJCS["PS WGS84",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
    '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Polar_Stereographic"],PARAMETER["latitude_of_origin",-71],'
    'PARAMETER["central_meridian",0],PARAMETER["scale_factor",1],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)
# NSIDC's own definition of its southern polar stereographic grid (nsidc.org, EPSG:3412).
NSIDC_SOUTH = ("+proj=stere +lat_0=-90 +lat_ts=-70 +lon_0=0 +k=1 +x_0=0 +y_0=0 +a=6378273 "
               "+b=6356889.449 +units=m +no_defs")  # fmt: skip
# UTM 18N parameters on a datum named "unknown": PROJ matches it to EPSG:3450 (JAD2001) and
# EPSG:32618 (WGS 84) alike; it is neither.
UNKNOWN_DATUM = (
    'PROJCS["unnamed",GEOGCS["unknown",DATUM["unknown",SPHEROID["WGS 84",6378137,'
    '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",-75],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    root = tmp_path_factory.mktemp("georef")
    src = root / "src"
    rpc = _rpc_model()
    rows, cols = RPC_SIZE

    # Geotransform + CRS near Vienna with RPC sidecars placing it in Kansas: GDAL's priority
    # is the geotransform, so the item is in Austria.
    for name, sidecar, text in (
        ("dg_rpb_20240201", "dg_rpb_20240201.RPB", _rpb(rpc)),
        ("dg_txt_20240201", "dg_txt_20240201_RPC.TXT", _rpc_txt(rpc)),
        ("dg_xml_20240201", "dg_xml_20240201.XML", _dg_xml(rpc)),
    ):
        # Larger than one 512 px tile, so it is converted, not passed through.
        write_geotiff(src / f"{name}.TIF", ramp(*DG_SIZE), crs="EPSG:32633", transform=UTM)
        (src / sidecar).write_text(text)

    # A VRT with a CRS, a geotransform and GCPs (in Kansas) over one of them: rio-cogeo
    # would warp by the GCPs.
    vrt = src / "gcps_too_20240201.vrt"
    rasterio.shutil.copy(src / "dg_rpb_20240201.TIF", vrt, driver="VRT")
    text = vrt.read_text().replace("</GeoTransform>", "</GeoTransform>" + KANSAS_GCPS, 1)
    vrt.write_text(text)

    # RPC-only: the RPCs in the TIFF, and in an .RPB sidecar.
    path = write_geotiff(src / "rpc_tag_20240202.tif", ramp(rows, cols))
    with rasterio.open(path, "r+") as dst:
        dst.rpcs = rpc
    write_geotiff(src / "rpc_sidecar_20240202.TIF", ramp(rows, cols))
    (src / "rpc_sidecar_20240202.RPB").write_text(_rpb(rpc))
    write_geotiff(src / "rpc_xml_20240202.TIF", ramp(rows, cols))
    (src / "rpc_xml_20240202.XML").write_text(_dg_xml(rpc))

    # GCP-only, one band (with and without nodata): the COG keeps one band.
    gcps = [GroundControlPoint(r, c, 16.0 + 0.004 * c + 0.001 * r, 48.0 - 0.003 * r + 0.0005 * c)
            for r in (0, 50, 100) for c in (0, 60, 120)]  # fmt: skip
    valid = np.ones((100, 120), bool)
    valid[:, :10] = False
    for name, invalid in (("gcp_1band_20240203", {}), ("gcp_nodata_20240203", {"nodata": 0}),
                          ("gcp_masked_20240203", {"mask": valid})):  # fmt: skip
        data = ramp(100, 120)
        data[:, :, :10] = 0  # (band, row, col): the first 10 columns
        path = write_geotiff(src / f"{name}.tif", data, **invalid)
        with rasterio.open(path, "r+") as dst:
            dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))

    # A Sentinel-1-like strip with GCPs at 179.x and -179.x.
    strip_gcps = []
    for r in np.linspace(0, STRIP[0], 5):
        for c in np.linspace(0, STRIP[1], 5):
            lon, lat = _strip_lonlat(c, r)
            strip_gcps.append(GroundControlPoint(r, c, (lon + 180) % 360 - 180, lat))
    path = write_geotiff(src / "s1_strip_20240204.tif", ramp(*STRIP))
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (strip_gcps, rasterio.crs.CRS.from_epsg(4326))

    # CRSs named otherwise than their authority code, or only resembling one.
    write_geotiff(src / "landsat_ps_20240205.tif", ramp(32, 32), crs=LANDSAT_PS,
                  transform=from_origin(-300000, -1000000, 30, 30))  # fmt: skip
    write_geotiff(src / "nsidc_south_20240205.tif", ramp(33, 32, "float32"), crs=NSIDC_SOUTH,
                  transform=from_origin(-3950000, 4350000, 250000, 250000))  # fmt: skip
    write_geotiff(src / "unknown_datum_20240205.tif", ramp(32, 32), crs=UNKNOWN_DATUM,
                  transform=from_origin(500000, 4000000, 30, 30))  # fmt: skip

    # COG pass-through: only real COGs.
    write_geotiff(src / "striped_20240206.tif", ramp(64, 64), crs="EPSG:32633", transform=UTM)
    write_geotiff(src / "tiled_no_overviews_20240206.tif", ramp(1100, 1100), crs="EPSG:32633",
                  transform=UTM, tiled=True, blockxsize=256, blockysize=256,
                  compress="deflate")  # fmt: skip
    plain = write_geotiff(root / "plain.tif", ramp(1100, 1100), crs="EPSG:32633", transform=UTM)
    cog_translate(plain, src / "real_cog_20240206.tif", cog_profiles.get("deflate"), quiet=True)

    # One side over a tile, the other not (D2): a global 0.5° grid, a long thin strip, and
    # a GCP-only raster of the global grid's shape (GDAL's COG driver path).
    write_geotiff(src / "cru_0p5_20240208.tif", ramp(360, 720), crs="EPSG:4326",
                  transform=from_origin(-180, 90, 0.5, 0.5))  # fmt: skip
    write_geotiff(src / "strip_20240208.tif", ramp(4000, 100), crs="EPSG:4326",
                  transform=from_origin(10, 50, 0.001, 0.001))  # fmt: skip
    # One pixel wide: no overview can halve it, and the COG is valid without (not strictly).
    write_geotiff(src / "transect_20240208.tif", ramp(5000, 1), crs="EPSG:4326",
                  transform=from_origin(10, 50, 0.001, 0.001))  # fmt: skip
    path = write_geotiff(src / "gcp_wide_20240208.tif", ramp(360, 720))
    wide_gcps = [GroundControlPoint(r, c, 10 + c / 72, 50 - r / 72)
                 for r in (0, 360) for c in (0, 720)]  # fmt: skip
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (wide_gcps, rasterio.crs.CRS.from_epsg(4326))

    report = ingest(IngestSettings(source=str(src), collection="georef",
                                   target=str(root / "data"), catalog=str(root / "catalog"),
                                   workers=2))  # fmt: skip
    return root, report


def _item_file(root: Path, item_id: str) -> Path:
    return item_files(root / "catalog", "georef")[item_id]


def _item(root: Path, item_id: str) -> dict[str, Any]:
    return json.loads(_item_file(root, item_id).read_text())


def _cog(root: Path, item_id: str) -> Path:
    """The stored COG, found through the item's data asset."""
    return asset_path(_item_file(root, item_id), _item(root, item_id)["assets"]["data"]["href"])


def _sym_diff_share(geom: Any, expected: Any) -> float:
    return float(geom.symmetric_difference(expected).area / expected.area)


def test_every_input_ingested_and_catalog_valid(ingested: tuple[Path, Report]) -> None:
    root, report = ingested
    assert_all_ingested_and_walkable(root / "catalog", report)
    for row in report.rows:
        assert cog_validate(str(_cog(root, row.item_ids[0])), quiet=True)[0], row.input


@pytest.mark.parametrize(
    "item_id", ["dg_rpb_20240201", "dg_txt_20240201", "dg_xml_20240201", "gcps_too_20240201"]
)
def test_geotransform_wins_over_rpc_sidecars(ingested: tuple[Path, Report], item_id: str) -> None:
    root, _ = ingested
    source = next(p for p in (root / "src").glob(f"{item_id}.*") if p.suffix in {".TIF", ".vrt"})
    with rasterio.open(source) as src:
        assert src.rpcs is not None  # GDAL did attach the sidecar's RPCs
        assert src.crs is not None and not src.transform.is_identity
        assert len(src.gcps[0]) == (4 if source.suffix == ".vrt" else 0)
    rows, cols = DG_SIZE
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    corners = [UTM * (c, r) for c, r in ((0, 0), (cols, 0), (cols, rows), (0, rows))]
    expected = Polygon(zip(*to_lonlat.transform(*zip(*corners, strict=True)), strict=True))
    item = _item(root, item_id)
    assert _sym_diff_share(shape(item["geometry"]), expected) < 0.01
    assert item["bbox"] == pytest.approx(list(expected.bounds), abs=1e-4)
    assert item["properties"]["proj:code"] == "EPSG:32633"


@pytest.mark.parametrize(
    "item_id", ["rpc_tag_20240202", "rpc_sidecar_20240202", "rpc_xml_20240202"]
)
def test_rpc_only_raster_is_placed_by_its_rpcs(ingested: tuple[Path, Report], item_id: str) -> None:
    root, _ = ingested
    rows, cols = RPC_SIZE
    # Image edges: GDAL's RPC pixel (0, 0) is the centre of the first pixel, so the outer
    # edges of the image lie half a pixel beyond the first and last centres.
    expected = Polygon([_rpc_lonlat(c, r) for c, r in
                        ((-0.5, -0.5), (cols - 0.5, -0.5), (cols - 0.5, rows - 0.5),
                         (-0.5, rows - 0.5))])  # fmt: skip
    item = _item(root, item_id)
    geom = shape(item["geometry"])
    assert geom.is_valid
    assert _sym_diff_share(geom, expected) < 0.02
    pixel = LON_SCALE / (cols / 2)
    assert item["bbox"] == pytest.approx(list(expected.bounds), abs=1.5 * pixel)
    # The COG keeps the RPCs (and so stays placeable by any GDAL reader).
    with rasterio.open(_cog(root, item_id)) as cog:
        assert cog.rpcs is not None
        assert cog.rpcs.long_off == pytest.approx(LON0)
        assert cog.rpcs.samp_num_coeff == pytest.approx(_rpc_model().samp_num_coeff)
        assert cog.count == 1
    _assert_unrectified(item, "rpcs")


def _assert_unrectified(item: dict[str, Any], georeferencing: str) -> None:
    """The projection extension: proj:code null for "non-rectified imagery with Ground
    Control Points", which has a shape but no CRS or transform of its pixel grid."""
    props = item["properties"]
    assert props["proj:code"] is None
    assert "proj:wkt2" not in props and "proj:epsg" not in props
    assert "proj:transform" not in props and len(props["proj:shape"]) == 2
    assert props["byod:georeferencing"] == georeferencing


@pytest.mark.parametrize(
    "item_id", ["gcp_1band_20240203", "gcp_nodata_20240203", "gcp_masked_20240203"]
)
def test_gcp_only_raster_keeps_its_bands(ingested: tuple[Path, Report], item_id: str) -> None:
    root, _ = ingested
    with rasterio.open(root / "src" / f"{item_id}.tif") as src:
        gcps, _ = src.gcps
        source_count, nodata, flags = src.count, src.nodata, src.mask_flag_enums
        source_valid = src.dataset_mask()
    with rasterio.open(_cog(root, item_id)) as cog:
        assert cog.count == source_count == 1
        assert cog.nodata == nodata
        assert cog.mask_flag_enums == flags
        assert (cog.dataset_mask() == source_valid).all()  # validity kept, no alpha band
    item = _item(root, item_id)
    bands = item["assets"]["data"]["raster:bands"]
    assert len(bands) == 1
    # GDAL's GCP transformer at full resolution, along every pixel edge of the valid area
    # (columns 10..120 where nodata or a mask is declared, the whole image otherwise).
    first = 10 if not source_valid.all() else 0
    transformer = GCPTransformer(gcps)
    cols = np.r_[np.arange(first, 121), np.full(101, 120), np.arange(120, first - 1, -1),
                 np.full(101, first)]  # fmt: skip
    rows = np.r_[np.zeros(121 - first), np.arange(0, 101), np.full(121 - first, 100),
                 np.arange(100, -1, -1)]  # fmt: skip
    xs, ys = transformer.xy(rows, cols, offset="ul")
    expected = Polygon(zip(xs, ys, strict=True))
    assert _sym_diff_share(shape(item["geometry"]), expected) < 0.01
    _assert_unrectified(item, "gcps")


def _unwrapped(geom: Any) -> Any:
    """A lon/lat geometry split at 180° made continuous again (parts west of 0 moved +360)."""
    parts = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    return unary_union([translate(p, 360) if p.bounds[2] <= 0 else p for p in parts])


def test_gcp_strip_across_antimeridian_is_narrow_and_split(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "s1_strip_20240204")
    rows, cols = STRIP
    expected = Polygon([_strip_lonlat(c, r) for c, r in ((0, 0), (cols, 0), (cols, rows),
                                                         (0, rows))])  # fmt: skip
    geom = shape(item["geometry"])
    assert item["geometry"]["type"] == "MultiPolygon"
    assert geom.is_valid
    assert all(-180 <= x <= 180 for p in geom.geoms for x, _ in p.exterior.coords)
    assert _sym_diff_share(_unwrapped(geom), expected) < 0.01
    west, south, east, north = item["bbox"]
    assert west > east  # crosses the antimeridian
    assert (west, south, east + 360, north) == pytest.approx(expected.bounds, abs=1e-3)


@pytest.mark.parametrize(
    ("item_id", "code"),
    [("landsat_ps_20240205", "EPSG:3031"), ("nsidc_south_20240205", "EPSG:3412")],
)
def test_equivalent_crs_gets_its_code_whatever_its_name(
    ingested: tuple[Path, Report], item_id: str, code: str
) -> None:
    root, _ = ingested
    with rasterio.open(_cog(root, item_id)) as cog:
        stored = CRS.from_wkt(cog.crs.to_wkt())
    assert stored.name != CRS.from_user_input(code).name  # named otherwise
    assert stored.equals(CRS.from_user_input(code), ignore_axis_order=True)
    props = _item(root, item_id)["properties"]
    assert props["proj:code"] == code
    assert "proj:wkt2" not in props


def test_crs_that_only_resembles_codes_has_no_code(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    with rasterio.open(_cog(root, "unknown_datum_20240205")) as cog:
        stored = CRS.from_wkt(cog.crs.to_wkt())
    # PROJ proposes codes that are not equivalent to each other: the CRS is none of them.
    proposed = [CRS.from_authority(m.auth_name, m.code)
                for m in stored.list_authority(min_confidence=0)]  # fmt: skip
    defined = [c for c in proposed if stored.equals(c, ignore_axis_order=True)]
    assert not defined or any(not defined[0].equals(d) for d in defined[1:])
    props = _item(root, "unknown_datum_20240205")["properties"]
    assert props["proj:code"] is None
    assert CRS.from_wkt(props["proj:wkt2"]).equals(stored)


def _layout(path: Path) -> tuple[bool, str | None, bool]:
    """(tiled, compression, overviews) as the TIFF stores them."""
    with rasterio.open(path) as src:
        rows, cols = src.block_shapes[0]
        tiled = not (cols == src.width and rows < src.height)
        return tiled, src.compression, bool(src.overviews(1))


@pytest.mark.parametrize("item_id", ["striped_20240206", "tiled_no_overviews_20240206"])
def test_not_quite_cogs_are_converted(ingested: tuple[Path, Report], item_id: str) -> None:
    root, _ = ingested
    source = root / "src" / f"{item_id}.tif"
    assert cog_validate(str(source), quiet=True)[0]  # rio-cogeo alone would pass them through
    item = _item(root, item_id)
    assert item["properties"]["byod:cog_passthrough"] is False
    stored = _cog(root, item_id)
    assert stored.read_bytes() != source.read_bytes()
    tiled, compression, overviews = _layout(stored)
    assert tiled and compression is not None
    with rasterio.open(stored) as cog:
        assert overviews or max(cog.width, cog.height) <= cog.block_shapes[0][0]
        assert (cog.read(1) == ramp(cog.height, cog.width)[0]).all()  # same pixels


def test_real_cog_is_stored_byte_for_byte(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    source = root / "src" / "real_cog_20240206.tif"
    assert _layout(source) == (True, Compression.deflate, True)
    assert _cog(root, "real_cog_20240206").read_bytes() == source.read_bytes()
    assert _item(root, "real_cog_20240206")["properties"]["byod:cog_passthrough"] is True


def _real_cog(path: Path) -> bool:
    """Tiled, compressed, overviews where larger than a tile, strictly valid: read here."""
    tiled, compression, overviews = _layout(path)
    with rasterio.open(path) as src:
        rows, cols = src.block_shapes[0]
        one_tile = src.width <= cols and src.height <= rows
    strict = cog_validate(str(path), strict=True, quiet=True)[0]
    return tiled and compression is not None and (overviews or one_tile) and strict


def test_demo_samples_exercise_conversion(tmp_path: Path) -> None:
    """The demo converts its samples for real: exactly one is already a COG and passes."""
    write_samples(tmp_path)
    rasters = sorted(p for p in tmp_path.rglob("*") if p.suffix.lower() == ".tif")
    assert len(rasters) > 5
    assert [p.name for p in rasters if _real_cog(p)] == ["ready_cog_20240201.tif"]
    assert [p.name for p in rasters if is_publishable_cog(p)] == ["ready_cog_20240201.tif"]


def test_unusable_rpcs_are_one_report_row(tmp_path: Path, run_ingest: Any) -> None:
    """RPCs that place nothing (zero scales and denominators) reject that file only."""
    broken = _rpc_model().to_gdal() | {"LINE_DEN_COEFF": "0 " * 20, "SAMP_DEN_COEFF": "0 " * 20,
                              "LONG_SCALE": 0.0, "LAT_SCALE": 0.0}  # fmt: skip
    path = write_geotiff(tmp_path / "src" / "broken_rpc_20240207.tif", ramp(20, 30))
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(ns="RPC", **{k: str(v) for k, v in broken.items()})
    write_geotiff(tmp_path / "src" / "fine_20240207.tif", ramp(20, 30), crs="EPSG:32633",
                  transform=UTM)  # fmt: skip
    rows = {r.input: r for r in run_ingest().rows}
    assert rows["fine_20240207.tif"].status is Status.INGESTED
    bad = rows["broken_rpc_20240207.tif"]
    assert bad.status is Status.REJECTED and bad.reason == "unknown_crs"
    assert bad.message is not None and "\n" not in bad.message
    assert "broken_rpc_20240207.tif" in bad.message and "RPCs" in bad.message


@pytest.mark.parametrize("item_id", ["cru_0p5_20240208", "strip_20240208", "gcp_wide_20240208"])
def test_one_side_over_a_tile_gets_overviews(ingested: tuple[Path, Report], item_id: str) -> None:
    """rio-cogeo's strict validation warns ("greater than 512xH or 512xW ... overviews")
    when either side exceeds 512 px and there are no overviews; the smallest overview's
    longer side fits in one tile."""
    root, _ = ingested
    stored = _cog(root, item_id)
    assert _real_cog(stored)
    with rasterio.open(stored) as cog:
        assert max(cog.width, cog.height) > 512 >= min(cog.width, cog.height)
        factors = cog.overviews(1)
        assert factors
        smallest = factors[-1]
        assert max(-(-cog.width // smallest), -(-cog.height // smallest)) <= 512
        placed_by_transform = cog.crs is not None
    # byod would store it byte for byte (GCP-only COGs are always rewritten: by design).
    assert is_publishable_cog(stored) is placed_by_transform


def test_load_names_unrectified_items(ingested: tuple[Path, Report]) -> None:
    """odc-stac cannot place pixels without a transform: byod.load says which items and
    what to do instead of odc-stac's "Failed to auto-guess CRS/resolution"."""
    root, _ = ingested
    items = [pystac.Item.from_file(str(_item_file(root, i)))
             for i in ("gcp_1band_20240203", "rpc_tag_20240202", "cru_0p5_20240208")]  # fmt: skip
    for kwargs in ({}, {"crs": "EPSG:4326", "resolution": 0.001}):
        with pytest.raises(UnrectifiedItems) as caught:
            load(items, bands=["data"], chunks={}, **kwargs)
        message = str(caught.value)
        assert "gcp_1band_20240203" in message and "rpc_tag_20240202" in message
        assert "cru_0p5_20240208" not in message and "\n" not in message
    # A rectified item alone still loads, with the pixels of its COG.
    loaded = load(items[2:], bands=["data"], chunks={})
    with rasterio.open(_cog(root, "cru_0p5_20240208")) as cog:
        assert (loaded["data"].isel(time=0).values == cog.read(1)).all()
