"""Write a small set of sample rasters to ingest: the demo data of the README's first command.

Each one exercises something byod must get right: a UTM scene with a nodata border, an RGB
image in EPSG:4326 with its time in a TIFF tag, a float grid with NaN nodata, a polar
stereographic grid, a raster crossing the antimeridian, and one that is already a COG.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles


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


def make_samples(folder: Path) -> list[Path]:
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
           photometric="RGB", tags={"TIFFTAG_DATETIME": "2023:06:15 09:30:00"})  # fmt: skip

    # Float32 surface temperature with NaN nodata, date in the folder name.
    lst = (wave[None] / 100 - 10).astype("float32")
    lst[:, 300:, 350:] = np.nan
    (folder / "lst_2022-08-01").mkdir(exist_ok=True)
    _write(folder / "lst_2022-08-01" / "surface_temperature.tif", lst, "EPSG:3035",
           from_origin(4500000, 2800000, 100, 100), nodata=float("nan"))  # fmt: skip

    # Sea ice concentration on the NSIDC polar stereographic grid, covering the pole.
    ice = (rng.random((1, 448, 304)) * 100).astype("uint8")
    _write(folder / "seaice_20240301.tif", ice, "EPSG:3413",
           from_origin(-3850000, 5850000, 25000, 25000), nodata=255)  # fmt: skip

    # A Fiji tile straddling the antimeridian in EPSG:4326 (longitudes 177..183).
    fiji = ((wave[None, :256, :512] / 30) % 200).astype("int16")
    fiji_grid = from_origin(177, -15, 0.0117, 0.0117)
    _write(folder / "fiji_dem_20210704.tif", fiji, "EPSG:4326", fiji_grid, nodata=-32768)

    # Already a valid COG: stored byte for byte.
    plain = folder / ".tmp_plain.tif"
    _write(plain, bands[:1], "EPSG:32633", from_origin(600000, 5350000, 20, 20), nodata=0)
    cog_translate(plain, folder / "ready_cog_20240201.tif", cog_profiles.get("deflate"), quiet=True)
    plain.unlink()
    return sorted(p for p in folder.rglob("*.tif"))


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "samples")
    for path in make_samples(out):
        print(path)
