"""NetCDF variables GDAL's netCDF driver leaves unplaced, shaped like real CF products.

- CMIP6 / CORDEX / Copernicus CDS (ERA5) files on a regular latitude/longitude grid without a
  `grid_mapping` variable: placed in WGS 84 (EPSG:4326) from the CF coordinate units, with a
  note saying the CRS was assumed.
- EURO-CORDEX rotated-pole files (1-D `rlat`/`rlon`, a `rotated_latitude_longitude` grid
  mapping, 2-D `lat`/`lon` named in `coordinates`): ingested in the rotated-pole CRS.
- Curvilinear swaths (Sentinel-5P-like L2: only 2-D latitude/longitude): rejected with a
  reason naming the kind, never world-file advice; a grid that contradicts its own 2-D
  latitude/longitude arrays likewise.
- A CLI ingest of a NetCDF with several unplaced variables writes nothing on stderr.

Expected values come from the fixtures' own coordinates and pyproj, never from byod.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import pystac
import pytest
import rasterio
from pyproj import CRS, Transformer
from shapely.geometry import MultiPoint, shape

from byod.reasons import Reason
from byod.report import Report, Row, Status
from byod.validate import validate_catalog

RunIngest = Callable[..., Report]
ROTATED_POLE = {"grid_mapping_name": "rotated_latitude_longitude",
                "grid_north_pole_latitude": 39.25, "grid_north_pole_longitude": -162.0}  # fmt: skip


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The source folder run_ingest reads."""
    folder = tmp_path / "src"
    folder.mkdir()
    return folder


def _items(catalog: Path) -> dict[str, pystac.Item]:
    root = pystac.Catalog.from_file(str(catalog / "catalog.json"))
    return {item.id: item for item in root.get_items(recursive=True)}


def _row(report: Report, name: str) -> Row:
    return next(r for r in report.rows if r.input == name)


def _cog(item: pystac.Item) -> str:
    return item.assets["data"].get_absolute_href() or ""


def _values(shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values per cell, so a flipped or shifted grid is caught."""
    return np.arange(int(np.prod(shape)), dtype="f4").reshape(shape) + 1.0


# --- regular latitude/longitude grids without grid_mapping ---------------------------------


def _era5_cds(path: Path, lon_units: str, lat_units: str, standard_names: bool) -> np.ndarray:
    """An ERA5 single-levels extract as the new CDS writes it: `valid_time` in seconds since
    1970, `latitude` north to south at 0.25°, `longitude` -180..180, no grid_mapping."""
    lat = np.arange(60.0, 50.0 - 0.125, -0.25)  # 41 rows, north first
    lon = np.arange(-10.0, 5.0 + 0.125, 0.25)  # 61 columns
    data = _values((1, lat.size, lon.size))
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.7"
        ds.institution = "European Centre for Medium-Range Weather Forecasts"
        ds.createDimension("valid_time", 1)
        ds.createDimension("latitude", lat.size)
        ds.createDimension("longitude", lon.size)
        t = ds.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t.calendar, t.standard_name = (
            "seconds since 1970-01-01",
            "proleptic_gregorian",
            "time",
        )
        t[:] = [int(dt.datetime(2023, 7, 1, 12, tzinfo=dt.UTC).timestamp())]
        for name, values, units, sn in (("latitude", lat, lat_units, "latitude"),
                                        ("longitude", lon, lon_units, "longitude")):  # fmt: skip
            v = ds.createVariable(name, "f8", (name,))
            v[:] = values
            if units:
                v.units = units
            if standard_names:
                v.standard_name = sn
        v = ds.createVariable(
            "t2m", "f4", ("valid_time", "latitude", "longitude"), fill_value=np.nan
        )
        v.units, v.long_name, v.standard_name = "K", "2 metre temperature", "air_temperature"
        v[:] = data
    return data


@pytest.mark.parametrize(
    ("lon_units", "lat_units", "standard_names"),
    [
        ("degrees_east", "degrees_north", True),  # CDS, CMIP6
        ("degree_E", "degree_N", False),  # a CF 4.1/4.2 variant, units alone
        ("", "", True),  # no units: standard_name alone
    ],
)
def test_era5_latlon_grid_without_grid_mapping_is_wgs84(
    tmp_path: Path,
    src: Path,
    run_ingest: RunIngest,
    lon_units: str,
    lat_units: str,
    standard_names: bool,
) -> None:
    name = "reanalysis-era5-single-levels_2m_temperature_20230701.nc"
    data = _era5_cds(src / name, lon_units, lat_units, standard_names)

    report = run_ingest()
    row = _row(report, name)
    assert row.status == Status.INGESTED, row.message
    assert any("assumed WGS 84" in n and "EPSG:4326" in n for n in row.notes)
    (item,) = _items(tmp_path / "catalog").values()
    assert item.properties["proj:code"] == "EPSG:4326"
    assert item.datetime == dt.datetime(2023, 7, 1, 12, tzinfo=dt.UTC)  # from valid_time
    # The cell edges, from the coordinates (0.25° cells centred on them).
    assert item.bbox == pytest.approx([-10.125, 49.875, 5.125, 60.125], abs=1e-6)
    with rasterio.open(_cog(item)) as cog:
        assert cog.crs.to_epsg() == 4326
        lats = np.arange(60.0, 50.0 - 0.125, -0.25)
        lons = np.arange(-10.0, 5.0 + 0.125, 0.25)
        for i, j in ((0, 0), (0, 60), (40, 0), (17, 33)):  # value at (lon, lat) is the file's
            (got,) = next(cog.sample([(lons[j], lats[i])]))
            assert got == data[0, i, j]
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []


def _cmip6_amon(path: Path) -> np.ndarray:
    """A CMIP6 Amon file (gn grid): lat south to north, lon 0..360, noleap time with bounds,
    lat_bnds/lon_bnds, no grid_mapping."""
    lat = np.arange(-88.75, 90.0, 2.5)  # 72 rows, south first (GDAL flips them)
    lon = np.arange(1.25, 360.0, 2.5)  # 144 columns on 0..360
    data = _values((1, lat.size, lon.size))
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions, ds.mip_era, ds.table_id = "CF-1.7 CMIP-6.2", "CMIP6", "Amon"
        for dim, n in (("time", None), ("lat", lat.size), ("lon", lon.size), ("bnds", 2)):
            ds.createDimension(dim, n)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.axis, t.bounds = "days since 1850-01-01", "noleap", "T", "time_bnds"
        t.standard_name = "time"
        t[:] = [54765.5]  # mid-January 2000 (noleap: 150 years of 365 days)
        ds.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = [[54750.0, 54781.0]]
        for name, values, units, axis in (("lat", lat, "degrees_north", "Y"),
                                          ("lon", lon, "degrees_east", "X")):  # fmt: skip
            v = ds.createVariable(name, "f8", (name,))
            v[:], v.units, v.axis, v.bounds = values, units, axis, f"{name}_bnds"
            v.standard_name = "latitude" if axis == "Y" else "longitude"
            b = ds.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
            b[:] = np.stack([values - 1.25, values + 1.25], axis=1)
        v = ds.createVariable("tas", "f4", ("time", "lat", "lon"), fill_value=np.float32(1e20))
        v.standard_name, v.units, v.cell_methods = "air_temperature", "K", "area: time: mean"
        v[:] = data
    return data


def test_cmip6_global_grid_on_0_360_without_grid_mapping(
    tmp_path: Path, src: Path, run_ingest: RunIngest
) -> None:
    name = "tas_Amon_MPI-ESM1-2-LR_historical_r1i1p1f1_gn_200001-200001.nc"
    data = _cmip6_amon(src / name)

    report = run_ingest()
    row = _row(report, name)
    assert row.status == Status.INGESTED, row.message
    assert any("assumed WGS 84" in n for n in row.notes)
    # Bounds variables are not rasters (issue 10), still ignored, not rejected.
    assert not any("not_georeferenced" in n for n in row.notes)
    (item,) = _items(tmp_path / "catalog").values()
    assert item.properties["proj:code"] == "EPSG:4326"
    assert item.properties["start_datetime"].startswith("2000-01-01")
    assert item.bbox == pytest.approx([-180.0, -90.0, 180.0, 90.0])
    with rasterio.open(_cog(item)) as cog:
        lat = np.arange(-88.75, 90.0, 2.5)
        lon = np.arange(1.25, 360.0, 2.5)
        for i, j in ((0, 0), (71, 143), (30, 100)):
            (got,) = next(cog.sample([(lon[j], lat[i])]))
            assert got == data[0, i, j]


# --- rotated pole (EURO-CORDEX) --------------------------------------------------------------


def _cordex(path: Path, *, coordinates: bool, pole: dict[str, object] | None = None) -> dict:
    """A EUR-44 file as CORDEX writes it: `rotated_pole` (a char variable), 1-D rlat/rlon
    at 0.44°, 2-D lat/lon computed with the grid's own rotation, monthly time with bounds."""
    rlon = -28.375 + 0.44 * np.arange(106)
    rlat = -23.375 + 0.44 * np.arange(103)
    crs = CRS.from_cf(ROTATED_POLE)
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(*np.meshgrid(rlon, rlat))
    data = _values((2, rlat.size, rlon.size))
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions, ds.project_id, ds.CORDEX_domain = "CF-1.4", "CORDEX", "EUR-44"
        for dim, n in (("time", None), ("rlat", rlat.size), ("rlon", rlon.size), ("bnds", 2)):
            ds.createDimension(dim, n)
        for name, values, sn, axis in (("rlat", rlat, "grid_latitude", "Y"),
                                       ("rlon", rlon, "grid_longitude", "X")):  # fmt: skip
            v = ds.createVariable(name, "f8", (name,))
            v[:], v.standard_name, v.units, v.axis = values, sn, "degrees", axis
        rp = ds.createVariable("rotated_pole", "c")
        for key, value in (pole or ROTATED_POLE).items():
            setattr(rp, key, value)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.bounds = "days since 1949-12-01 00:00:00", "standard", "time_bnds"
        starts = [netCDF4.date2num(dt.datetime(2005, m, 1), t.units) for m in (1, 2, 3)]
        t[:] = [(a + b) / 2 for a, b in itertools.pairwise(starts)]
        ds.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = np.array(
            [starts[:2], starts[1:]]
        ).T
        for name, values, units in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            v = ds.createVariable(name, "f8", ("rlat", "rlon"))
            v[:], v.units = values, units
            v.standard_name = "latitude" if name == "lat" else "longitude"
        v = ds.createVariable("tas", "f4", ("time", "rlat", "rlon"), fill_value=np.float32(1e20))
        v.units, v.standard_name, v.grid_mapping = "K", "air_temperature", "rotated_pole"
        if coordinates:
            v.coordinates = "lat lon"
        v[:] = data
    return {"rlon": rlon, "rlat": rlat, "lon": lon, "lat": lat, "data": data, "crs": crs}


def _edge_bbox(crs: CRS, xs: np.ndarray, ys: np.ndarray, step: float) -> list[float]:
    """The lon/lat bbox of a regular grid's outer cell corners (cell centres `xs`, `ys`)."""
    edge_x = np.concatenate([xs - step / 2, [xs[-1] + step / 2]])
    edge_y = np.concatenate([ys - step / 2, [ys[-1] + step / 2]])
    corners_x, corners_y = np.meshgrid(edge_x, edge_y)
    border = np.ones(corners_x.shape, dtype=bool)
    border[1:-1, 1:-1] = False
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    lons, lats = to_lonlat.transform(corners_x[border], corners_y[border])
    return [min(lons), min(lats), max(lons), max(lats)]


@pytest.mark.parametrize("coordinates", [True, False])
def test_cordex_rotated_pole_grid_is_ingested_in_its_crs(
    tmp_path: Path, src: Path, run_ingest: RunIngest, coordinates: bool
) -> None:
    name = "tas_EUR-44_MPI-M-MPI-ESM-LR_historical_r1i1p1_SMHI-RCA4_v1_mon_200501-200502.nc"
    grid = _cordex(src / name, coordinates=coordinates)

    report = run_ingest()
    row = _row(report, name)
    assert row.status == Status.INGESTED, row.message
    # The COG's GeoTIFF keys cannot hold a rotated pole: the row says where the CRS is.
    assert any("GeoTIFF cannot encode" in n and "proj:wkt2" in n for n in row.notes)
    (item,) = _items(tmp_path / "catalog").values()
    props = item.properties
    assert CRS.from_wkt(props["proj:wkt2"]).equals(grid["crs"], ignore_axis_order=True)
    assert props["proj:code"] is None
    assert props["proj:shape"] == [103, 106]
    step = 0.44
    # proj:transform from the rotated coordinates: cell edges, north up.
    expected = [step, 0, grid["rlon"][0] - step / 2, 0, -step, grid["rlat"][-1] + step / 2]
    assert props["proj:transform"][:6] == pytest.approx(expected, abs=1e-9)
    # Every 2-D lat/lon cell centre of the file lies inside the footprint.
    footprint = shape(item.geometry)
    centres = MultiPoint(np.column_stack([grid["lon"].ravel(), grid["lat"].ravel()]))
    assert footprint.buffer(1e-9).contains(centres)
    # The bbox is the outline of the edge cells' corners, through pyproj.
    expected_bbox = _edge_bbox(grid["crs"], grid["rlon"], grid["rlat"], step)
    assert item.bbox == pytest.approx(expected_bbox, abs=0.05)
    # Pixels: the value at rotated (rlon, rlat) is the file's, in every band.
    cog_path = _cog(item)
    with rasterio.open(cog_path) as cog:
        assert cog.count == 2
        assert cog.transform[:6] == pytest.approx(expected, abs=1e-9)
        for i, j in ((0, 0), (102, 105), (40, 70)):
            got = next(cog.sample([(grid["rlon"][j], grid["rlat"][i])]))
            assert list(got) == [grid["data"][0, i, j], grid["data"][1, i, j]]
    assert props["start_datetime"].startswith("2005-01-01")
    assert props["end_datetime"].startswith("2005-02-28")
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []


def test_projected_cordex_grid_with_2d_latlon_keeps_gdals_placement(
    tmp_path: Path, src: Path, run_ingest: RunIngest
) -> None:
    """A CORDEX-NA-like Lambert conformal grid: x/y in km, 2-D lat/lon in `coordinates`.
    GDAL places it itself; byod's CF reading must not change that."""
    mapping = {"grid_mapping_name": "lambert_conformal_conic", "standard_parallel": [30.0, 60.0],
               "longitude_of_central_meridian": -97.0, "latitude_of_projection_origin": 47.5,
               "earth_radius": 6371229.0}  # fmt: skip
    crs = CRS.from_cf(mapping)
    x = -2000.0 + 50.0 * np.arange(40)
    y = -1500.0 + 50.0 * np.arange(30)
    name = "pr_NAM-44_CCCma-CanESM2_rcp85_r1i1p1_UQAM-CRCM5_v1_day_20500101-20500101.nc"
    with netCDF4.Dataset(src / name, "w") as ds:
        ds.createDimension("y", y.size)
        ds.createDimension("x", x.size)
        for dim, values in (("x", x), ("y", y)):
            v = ds.createVariable(dim, "f8", (dim,))
            v[:], v.units, v.axis = values, "km", dim.upper()
            v.standard_name = f"projection_{dim}_coordinate"
        g = ds.createVariable("Lambert_Conformal", "i4")
        for key, value in mapping.items():
            setattr(g, key, value)
        to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
        lon, lat = to_lonlat.transform(*np.meshgrid(x * 1000, y * 1000))
        for var, values, units in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            v = ds.createVariable(var, "f8", ("y", "x"))
            v[:], v.units = values, units
        v = ds.createVariable("pr", "f4", ("y", "x"))
        v.grid_mapping, v.coordinates, v.units = "Lambert_Conformal", "lat lon", "kg m-2 s-1"
        v[:] = _values((y.size, x.size))

    row = _row(run_ingest(), name)
    assert row.status == Status.INGESTED, row.message
    (item,) = _items(tmp_path / "catalog").values()
    # Same mapping to lon/lat as the file's grid mapping (names of the sphere may differ).
    got = Transformer.from_crs(CRS.from_wkt(item.properties["proj:wkt2"]), 4326, always_xy=True)
    want = Transformer.from_crs(crs, 4326, always_xy=True)
    points = (np.array([-2e6, 0.0, -1e6, 1e5]), np.array([-1.5e6, 0.0, 1e5, -1e5]))
    assert np.allclose(got.transform(*points), want.transform(*points), atol=1e-9)
    expected = [50000.0, 0, -2025000.0, 0, -50000.0, 25000.0 - 50000.0]
    assert item.properties["proj:transform"][:6] == pytest.approx(expected)
    assert item.bbox == pytest.approx(_edge_bbox(crs, x * 1000, y * 1000, 50000.0), abs=0.05)


def test_grid_that_contradicts_its_2d_latlon_is_rejected(
    tmp_path: Path, src: Path, run_ingest: RunIngest
) -> None:
    name = "tas_EUR-44_wrong-pole_mon_200501-200502.nc"
    wrong = {**ROTATED_POLE, "grid_north_pole_latitude": 42.0}  # 2-D lat/lon say 39.25
    _cordex(src / name, coordinates=True, pole=wrong)

    row = _row(run_ingest(), name)
    assert row.status == Status.REJECTED
    assert row.reason == Reason.NOT_GEOREFERENCED
    assert "2-D latitude/longitude arrays" in (row.message or "")
    assert ".prj" not in (row.message or "") and "world file" not in (row.message or "")


# --- curvilinear swaths -----------------------------------------------------------------------


def _s5p_like(path: Path) -> None:
    """A Sentinel-5P-like L2 swath: (scanline, ground_pixel) with only 2-D latitude/longitude
    that curve across the track, no grid mapping, no 1-D spatial coordinates; a float
    product and a uint8 `qa_value`."""
    rows, cols = 40, 30
    line, pixel = np.mgrid[0:rows, 0:cols].astype(float)
    lat = 40.0 + 0.07 * line + 0.002 * (pixel - cols / 2) ** 2
    lon = 10.0 + 0.05 * pixel + 0.01 * line + 0.0005 * line**2
    data = _values((1, rows, cols))
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.7"
        ds.createDimension("time", 1)
        ds.createDimension("scanline", rows)
        ds.createDimension("ground_pixel", cols)
        for name, values, units in (("latitude", lat, "degrees_north"),
                                    ("longitude", lon, "degrees_east")):  # fmt: skip
            v = ds.createVariable(name, "f4", ("time", "scanline", "ground_pixel"))
            v[:], v.units, v.standard_name = values[None], units, name
        v = ds.createVariable("nitrogendioxide_tropospheric_column", "f4",
                              ("time", "scanline", "ground_pixel"))  # fmt: skip
        v.units, v.coordinates = "mol m-2", "longitude latitude"
        v[:] = data
        q = ds.createVariable("qa_value", "u1", ("time", "scanline", "ground_pixel"))
        q.coordinates = "longitude latitude"
        q[:] = 100


def test_curvilinear_swath_is_rejected_naming_the_kind(src: Path, run_ingest: RunIngest) -> None:
    """GDAL's geolocation-array warp (gdalwarp -geoloc) dropped edge pixels and put some
    corner values more than a pixel away on this swath, so byod does not rectify: one row
    per file, naming the kind, no world-file advice."""
    name = "S5P_OFFL_L2__NO2____20230701T110301_20230701T124431_29573_03_020500_20230703T031337.nc"
    _s5p_like(src / name)

    row = _row(run_ingest(), name)
    assert row.status == Status.REJECTED
    assert row.reason == Reason.NOT_GEOREFERENCED
    message = row.message or ""
    assert "placed by 2-D geolocation arrays (curvilinear/swath)" in message
    assert "does not rectify" in message
    assert ".prj" not in message and "world file" not in message


# --- the CLI's stderr ------------------------------------------------------------------------


def test_cli_stderr_stays_clean_for_unplaced_netcdf_variables(tmp_path: Path, src: Path) -> None:
    """Several variables without any georeferencing (plain x/y index dimensions) are each
    noted, and rasterio's NotGeoreferencedWarning never reaches stderr."""
    with netCDF4.Dataset(src / "model_output_2021.nc", "w") as ds:
        ds.createDimension("y", 12)
        ds.createDimension("x", 15)
        for name in ("u", "v", "w"):
            ds.createVariable(name, "f4", ("y", "x"))[:] = _values((12, 15))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("byod")), "ingest", str(src), "--collection", "t",
         "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "cat"),
         "--workers", "1", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Warning" not in result.stderr and "site-packages" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 1
    (row,) = json.loads(result.stdout)["rows"]
    assert row["reason"] == "not_georeferenced"
    assert ".prj" not in row["message"] and "world file" not in row["message"]
