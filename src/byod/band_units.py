"""Carry the bands' units into a COG written by rio-cogeo.

rio-cogeo 7 copies descriptions, band tags, scales and offsets into the COG but not GDAL's
band unit type (`GDALRasterBand::SetUnitType`, read by rasterio as `src.units`), which the
netCDF and HDF drivers fill from a variable's `units` attribute. A COG cannot be updated in
place without breaking its layout (GDAL refuses: IGNORE_COG_LAYOUT_BREAK), so the units are
given to GDAL as a PAM sidecar (`.aux.xml`, GDAL's own format for band metadata) and the COG
is copied once more with its overviews (`COPY_SRC_OVERVIEWS`, the step rio-cogeo itself ends
with); GDAL's GeoTIFF driver writes them into the file's GDAL_METADATA tag. Rasters without
units are left untouched, so the extra copy costs only inputs that carry units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import rasterio
import rasterio.shutil

# rio-cogeo profile keys that are not GDAL creation options.
_NOT_CREATION_OPTIONS = {"driver", "count", "dtype", "width", "height", "crs", "transform"}


def source_units(source: str) -> tuple[str | None, ...]:
    """The unit type of each band of `source` (None where it has none)."""
    with rasterio.open(source) as src:
        return tuple(u or None for u in src.units)


def keep_band_units(
    units: tuple[str | None, ...], cog: Path, profile: dict[str, Any], config: dict[str, Any]
) -> None:
    """Rewrite `cog` (a valid COG) with `units` as its bands' unit types; no-op without units.

    `profile` is the rio-cogeo profile the COG was written with (its compression, tiling,
    predictor and BIGTIFF setting are kept); `config` the GDAL configuration of the run.
    Raises rasterio's errors and OSError as the conversion does.
    """
    if not any(units):
        return
    with rasterio.open(cog) as written:
        if tuple(u or None for u in written.units) == units:
            return
    bands = "".join(
        f'<PAMRasterBand band="{i}"><UnitType>{escape(unit)}</UnitType></PAMRasterBand>'
        for i, unit in enumerate(units, start=1)
        if unit
    )
    pam = cog.with_name(cog.name + ".aux.xml")
    copy = cog.with_name(cog.stem + ".units.tif")
    options = {k.upper(): v for k, v in profile.items() if k not in _NOT_CREATION_OPTIONS}
    if str(options.get("TILED", "")).lower() in {"true", "1"}:
        options["TILED"] = "YES"
    try:
        pam.write_text(f"<PAMDataset>{bands}</PAMDataset>", "utf-8")
        with rasterio.Env(**config):
            rasterio.shutil.copy(cog, copy, driver="GTiff", COPY_SRC_OVERVIEWS="YES", **options)
        copy.replace(cog)
    finally:
        pam.unlink(missing_ok=True)
        copy.unlink(missing_ok=True)
        copy.with_name(copy.name + ".aux.xml").unlink(missing_ok=True)
