"""Which files GDAL reads as rasters: by GDAL's own extension lists, and by its driver
identification for files whose extension says nothing.

Identification is GDAL's `GDALIdentifyDriverEx` with `GDAL_OF_RASTER`: each driver looks at
the header bytes GDAL has read (the first kilobyte) and the name, without opening the
dataset, so a VRT's sources or a netCDF's variables are not touched. It is what
`gdalinfo` and `GDALOpen` use to pick a driver. rasterio does not expose it and the GDAL
Python bindings are not installed, so it is called through ctypes in the GDAL library
rasterio has loaded (the same library, hence the same drivers, that will open the file).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable
from functools import cache
from typing import Any

import rasterio
import rasterio._base
from rasterio.drivers import raster_driver_extensions

log = logging.getLogger(__name__)

_GDAL_OF_RASTER = 0x02
# GDAL extensions that name documents, vector or tile databases, labels beside the data
# file, or common non-raster files more often than rasters: such files are candidates only
# when identified by content.
NOT_RASTER_EXTENSIONS = frozenset({
    ".pdf", ".kml", ".kmz", ".gpkg", ".zip", ".sqlite", ".mbtiles", ".xml", ".hdr", ".lbl",
    ".rda", ".map", ".err", ".gen", ".cal",
})  # fmt: skip
# Drivers whose identification is no evidence of raster data: PDF documents, CSV or text
# tables of numbers (XYZ), and database containers that mostly hold vectors.
NOT_RASTER_DRIVERS = frozenset({"PDF", "XYZ", "GPKG", "Rasterlite", "MBTiles", "KMLSUPEROVERLAY"})


@cache
def gdal_raster_extensions() -> frozenset[str]:
    """Extensions (".lcp") GDAL's raster drivers declare, less NOT_RASTER_EXTENSIONS."""
    found = {"." + ext.lower().rsplit(".", 1)[-1] for ext in raster_driver_extensions()}
    return frozenset(found - NOT_RASTER_EXTENSIONS)


@cache
def _identify_function() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        lib = ctypes.CDLL(rasterio._base.__file__)  # its dependencies include libgdal
        identify = lib.GDALIdentifyDriverEx
        short_name = lib.GDALGetDriverShortName
    except (OSError, AttributeError) as exc:  # a rasterio built without exported symbols
        log.warning("GDAL driver identification unavailable (%s): unknown extensions ignored",
                    exc)  # fmt: skip
        return None
    identify.restype = ctypes.c_void_p
    identify.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    short_name.restype = ctypes.c_char_p
    short_name.argtypes = [ctypes.c_void_p]
    return identify, short_name


def identify_driver(path: str) -> str | None:
    """The short name of the GDAL raster driver that recognises the file ("LCP", "GTiff"),
    or None. Reads the file's header only; never raises for an unreadable file."""
    functions = _identify_function()
    if functions is None:
        return None
    identify, short_name = functions
    with rasterio.Env():  # registers GDAL's drivers
        handle = identify(os.fsencode(path), _GDAL_OF_RASTER, None, None)
        if not handle:
            return None
        name = short_name(handle)
    return name.decode() if name else None


def looks_like_raster(path: str) -> bool:
    """Whether GDAL identifies the file as a raster of a driver that is evidence of data."""
    driver = identify_driver(path)
    return driver is not None and driver not in NOT_RASTER_DRIVERS
