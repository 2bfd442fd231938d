"""Sample rasters to ingest: the data of the README's demo and of the notebook.

Each one exercises something byod must get right: a UTM scene with a nodata border, an RGB
image in EPSG:4326 with its time in a TIFF tag, a float grid with NaN nodata, a polar
stereographic grid, a raster crossing the antimeridian, one that is already a COG, and a
Sentinel-2-like time series (red, NIR and SCL band files of three dates, with clouds).

The files are laid out as researchers' files come, so the demo exercises conversion: most
are striped and uncompressed (GDAL's GeoTIFF default), some striped but compressed, some
tiled without overviews; all of those are converted. Exactly one, `ready_cog_20240201.tif`,
is a real COG (tiled, compressed, internal overviews, larger than one tile) and is stored
byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

# Creation options of the layouts the samples come in (GDAL GeoTIFF options); without
# options GDAL writes strips, uncompressed, without overviews.
STRIPED_DEFLATE = {"compress": "deflate"}
TILED_NO_OVERVIEWS = {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "lzw"}


def _write(path: Path, data: np.ndarray, crs: str, transform, **extra) -> None:
    tags = extra.pop("tags", {})
    profile = {
        "driver": "GTiff", "height": data.shape[1], "width": data.shape[2],
        "count": data.shape[0], "dtype": data.dtype.name, "crs": crs, "transform": transform,
        **extra,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)


def write_samples(folder: Path) -> list[Path]:
    """Write the samples under `folder` (idempotent) and return the raster paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[0:512, 0:512]
    wave = (np.sin(xx / 40) + np.cos(yy / 55)) * 1000 + 3000

    # Sentinel-2-like UTM 33N scene, 4 bands uint16, nodata border as on a swath edge.
    bands = np.stack([wave + 300 * i + rng.normal(0, 50, wave.shape) for i in range(4)])
    bands = bands.astype("uint16")
    bands[:, :, :80] = 0
    bands[:, :40, :] = 0
    _write(folder / "vienna_20240131T101500_utm.tif", bands, "EPSG:32633",
           from_origin(600000, 5350000, 20, 20), nodata=0)  # fmt: skip

    # RGB aerial-like image in EPSG:4326, time in TIFFTAG_DATETIME.
    rgb = np.stack([(wave / 20) % 255, (wave / 15) % 255, (wave / 25) % 255]).astype("uint8")
    _write(folder / "orthophoto_rgb.tif", rgb, "EPSG:4326", from_origin(11.0, 48.3, 0.0005, 0.0005),
           photometric="RGB", tags={"TIFFTAG_DATETIME": "2023:06:15 09:30:00"},
           **TILED_NO_OVERVIEWS)  # fmt: skip

    # Float32 surface temperature with NaN nodata, date in the folder name.
    lst = (wave[None] / 100 - 10).astype("float32")
    lst[:, 300:, 350:] = np.nan
    (folder / "lst_2022-08-01").mkdir(exist_ok=True)
    _write(folder / "lst_2022-08-01" / "surface_temperature.tif", lst, "EPSG:3035",
           from_origin(4500000, 2800000, 100, 100), nodata=float("nan"),
           **STRIPED_DEFLATE)  # fmt: skip

    # Sea ice concentration on the NSIDC polar stereographic grid, covering the pole.
    ice = (rng.random((1, 448, 304)) * 100).astype("uint8")
    _write(folder / "seaice_20240301.tif", ice, "EPSG:3413",
           from_origin(-3850000, 5850000, 25000, 25000), nodata=255)  # fmt: skip

    # A Fiji tile straddling the antimeridian in EPSG:4326 (longitudes 177..183).
    fiji = ((wave[None, :256, :512] / 30) % 200).astype("int16")
    fiji_grid = from_origin(177, -15, 0.0117, 0.0117)
    _write(folder / "fiji_dem_20210704.tif", fiji, "EPSG:4326", fiji_grid, nodata=-32768,
           **TILED_NO_OVERVIEWS)  # fmt: skip

    # Already a real COG, larger than one 512 px tile, with internal overviews: stored byte
    # for byte. Written by rio-cogeo as a producer would.
    plain = folder / ".tmp_plain.tif"
    big = np.tile(bands[:1], (1, 2, 2))
    _write(plain, big, "EPSG:32633", from_origin(600000, 5350000, 10, 10), nodata=0)
    cog_translate(plain, folder / "ready_cog_20240201.tif", cog_profiles.get("deflate"),
                  quiet=True)  # fmt: skip
    plain.unlink()
    _time_series(folder / "s2_timeseries", rng)
    return sorted(p for p in folder.rglob("*.tif"))


# Date, share of the scene under cloud (SCL 9), and how green the fields are.
TIME_SERIES = (("20240605T100031", 0.10, 0.55), ("20240620T100029", 0.60, 0.70),
               ("20240705T100031", 0.25, 0.80))  # fmt: skip


def _time_series(folder: Path, rng: np.random.Generator) -> None:
    """Band files of tile T33UXP (red B04 and NIR B08 at 10 m, SCL at 20 m) on three dates:
    grouped by byod into one item per date, with the SCL driving eo:cloud_cover."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:64, 0:64]
    fields = ((xx // 16 + yy // 16) % 2).astype(float)  # a checkerboard of fields
    for stamp, cloud_share, greenness in TIME_SERIES:
        red = 900 - 500 * greenness * fields + rng.normal(0, 20, fields.shape)
        nir = 2000 + 2500 * greenness * fields + rng.normal(0, 40, fields.shape)
        ten = from_origin(600000, 5340640, 10, 10)
        base = f"T33UXP_{stamp}"
        _write(folder / f"{base}_B04_10m.tif", red[None].astype("uint16"), "EPSG:32633", ten,
               nodata=0)  # fmt: skip
        _write(folder / f"{base}_B08_10m.tif", nir[None].astype("uint16"), "EPSG:32633", ten,
               nodata=0)  # fmt: skip
        scl = np.full((1, 32, 32), 4, "uint8")  # vegetation
        scl[:, : round(32 * cloud_share), :] = 9  # cloud, high probability
        _write(folder / f"{base}_SCL_20m.tif", scl, "EPSG:32633",
               from_origin(600000, 5340640, 20, 20), nodata=0)  # fmt: skip
