"""Open a raster and read what it says into plain records; the reasons an input is rejected.

Everything read here comes from headers, overviews, decimated reads or chunk-by-chunk reads,
so memory stays bounded by the block or chunk size, not the raster size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError
from rasterio._err import CPLE_BaseError
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader
from rasterio.transform import Affine, GCPTransformer, RPCTransformer
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from byod.cf import is_geolocated
from byod.declared_size import (
    HeaderError,
    classic_length,
    envi_length,
    hdf5_length,
    signature,
)
from byod.footprint import PixelToCrs
from byod.reasons import Reason, RejectedInput
from byod.records import BandInfo, RasterInfo

# Longest side of the pooled mask a footprint is traced from (the outline's resolution).
FOOTPRINT_MASK_SIZE = 1024


def open_dataset(name: str | Path) -> DatasetReader:
    """Open with rasterio, turning its errors into rejections with the file named: a
    RejectedInput with reason EMPTY_FILE, TRUNCATED, NOT_A_RASTER or UNREADABLE.

    A file a GDAL driver recognises but cannot open, while the OS reads it, has a damaged or
    cut header (an HFA `.img`, a JPEG 2000 or a PNG cut short): TRUNCATED, with GDAL's
    message; so is a file GDAL does not recognise that starts with a format's signature
    (HDF5 shorter than its superblock says, a cut NetCDF header, a TIFF or HFA header), and
    a NetCDF classic file shorter than its header declares (GDAL would read zeros).
    UNREADABLE is left for what the OS refuses (permissions, I/O errors) and GDAL names that
    are no file (a subdataset)."""
    path = Path(name)
    if path.exists() and path.is_file() and path.stat().st_size == 0:
        raise RejectedInput(Reason.EMPTY_FILE, f"{path.name}: file is empty (0 bytes)")
    if path.is_file():
        _check_classic_length(path)
    try:
        return rasterio.open(name)
    except RasterioIOError as exc:
        text = str(exc)
        if "not recognized as being in a supported file format" in text or (
            "not recognized as a supported file format" in text
        ):
            signed = _damaged_format(path) if path.is_file() else None
            if signed is not None:
                raise RejectedInput(
                    Reason.TRUNCATED,
                    f"{path.name}: damaged or truncated {signed[0]} file ({signed[1]})",
                ) from None
            raise RejectedInput(
                Reason.NOT_A_RASTER, f"{path.name}: not a raster format GDAL can read"
            ) from None
        damaged = "TIFFReadDirectory" in text or "truncated" in text.lower() or "TIFF" in text
        if damaged or _readable_file(path):
            raise RejectedInput(
                Reason.TRUNCATED, f"{path.name}: damaged or truncated file ({_first_line(text)})"
            ) from None
        raise RejectedInput(
            Reason.UNREADABLE, f"{path.name}: cannot be opened ({_first_line(text)})"
        ) from None


def _check_classic_length(path: Path) -> None:
    """Reject a NetCDF classic file shorter than its header says (declared_size): netCDF-C,
    and so GDAL, returns zeros for the missing bytes, which would be stored as data."""
    try:
        expected = classic_length(path)
    except HeaderError as exc:
        raise RejectedInput(
            Reason.TRUNCATED, f"{path.name}: damaged or truncated NetCDF header ({exc})"
        ) from None
    except OSError:
        return  # open_dataset tells what the OS refuses
    size = path.stat().st_size
    if expected is not None and size < expected:
        raise RejectedInput(
            Reason.TRUNCATED,
            f"{path.name}: truncated: {size:,} bytes of the {expected:,} its NetCDF header "
            "declares",
        )


def _damaged_format(path: Path) -> tuple[str, str] | None:
    """(format, detail) when `path` starts with the signature of a format a GDAL driver
    identifies (declared_size.SIGNATURES) although GDAL could not open it: the file is cut
    or damaged, not of an unknown format. An HDF5 file as long as its superblock says, or a
    NetCDF classic file whose header reads whole, is taken as intact: None (GDAL found no
    raster in it, or cannot read that variant: CDF-5 without netCDF-C's support)."""
    kind = signature(path)
    if kind is None:
        return None
    if kind.startswith("HDF5"):
        try:
            declared = hdf5_length(path)
        except HeaderError as exc:
            return kind, str(exc)
        except OSError:
            return None
        size = path.stat().st_size
        if declared is not None and size < declared:
            return kind, f"{size:,} bytes of the {declared:,} its superblock declares"
        return None
    if kind.startswith("NetCDF"):
        return None  # its header was read whole and the file is long enough (open_dataset)
    return kind, "its header is recognised but GDAL cannot open it"


def _readable_file(path: Path) -> bool:
    """Whether `path` is a regular file the OS lets this process read a byte of."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError:
        return False
    return path.is_file()


def subdatasets(name: str | Path) -> list[str]:
    """GDAL names of the subdatasets of a container (NetCDF, HDF), or [] for a plain raster."""
    with open_dataset(name) as src:
        return list(src.subdatasets)


def inspect(
    src: DatasetReader, *, label: str, max_pixels: int, scan_nan: bool = False
) -> RasterInfo:
    """Read the header of an open dataset; reject what cannot become a georeferenced COG.

    `max_pixels` bounds width x height (pixels of one band, as the header declares them:
    checked before any read); `label` names the input in messages. With `scan_nan`, float
    bands without a declared nodata are read decimated (from overviews in a COG) to set
    `BandInfo.has_nan`. `RasterInfo.transform` is rasterio's Affine order (a, b, c, d, e, f),
    as `proj:transform` wants it (not GDAL's geotransform order), in the CRS's units;
    `tags` merge the default and IMAGERY metadata domains.

    Raises RejectedInput (empty, not a raster, too large, not georeferenced, unknown CRS,
    truncated) and MemoryError when a block exceeds the worker's memory bound.
    """
    if src.count == 0:
        raise RejectedInput(Reason.NOT_A_RASTER, f"{label}: has no raster bands")
    if src.width * src.height > max_pixels:
        raise RejectedInput(
            Reason.TOO_LARGE,
            f"{label}: header claims {src.width} x {src.height} pixels, over the limit of "
            f"{max_pixels:,} (--max-pixels)",
        )
    # Readable first: a header cut short can read as "no georeferencing" (the GeoKeys lie
    # past the end) when the truth is that the file is truncated.
    _check_readable(src, label)
    crs, transform, georef = _georeferencing(src, label)
    _check_crs(crs, src, label, georef)
    nan_bands = _nan_bands(src) if scan_nan else set()
    bands = tuple(
        BandInfo(
            index=i,
            data_type=src.dtypes[i - 1],
            nodata=src.nodatavals[i - 1],
            color=src.colorinterp[i - 1].name.lower(),
            scale=float(src.scales[i - 1]),
            offset=float(src.offsets[i - 1]),
            unit=src.units[i - 1] or None,
            description=src.descriptions[i - 1] or None,
            has_nan=i in nan_bands,
        )
        for i in src.indexes
    )
    tags = {**src.tags(), **src.tags(ns="IMAGERY")}
    return RasterInfo(
        name=src.name,
        driver=src.driver,
        width=src.width,
        height=src.height,
        crs_wkt=crs.to_wkt(),
        crs_code=authority_code(crs),
        transform=None if transform is None else tuple(transform)[:6],
        georeferencing=georef,
        bands=bands,
        tags=tags,
    )


def band_validity(src: DatasetReader) -> list[tuple[str, str | None] | None]:
    """How GDAL tells each band's valid pixels, one entry per band (None for an alpha band,
    which is the dataset's mask rather than a rule of its own): ("nodata", value), ("mask",
    None) for a per-dataset mask (internal, `.msk`, alpha: GDAL then ignores the band's
    nodata, so bands sharing the mask agree whatever their nodata), ("none", None) for all
    valid, or ("band", "<index>") for a mask of the band's own (a VRT's per-band
    <MaskBand>, a per-band `.msk`). NaN nodata is "nan"."""
    out: list[tuple[str, str | None] | None] = []
    for i, flags in zip(src.indexes, src.mask_flag_enums, strict=True):
        nodata = src.nodatavals[i - 1]
        value = None if nodata is None else repr(float(nodata))
        if src.colorinterp[i - 1] == ColorInterp.alpha:
            out.append(None)
        elif MaskFlags.nodata in flags:
            out.append(("nodata", value))
        elif MaskFlags.per_dataset in flags:
            out.append(("mask", None))
        elif MaskFlags.all_valid in flags:
            out.append(("none", value))
        else:  # GMF flags 0: a mask band of its own
            out.append(("band", str(i)))
    return out


def alpha_band(src: DatasetReader) -> int | None:
    """The index of the band GDAL reads as alpha (colour interpretation), or None."""
    return next((i for i in src.indexes if src.colorinterp[i - 1] == ColorInterp.alpha), None)


def needs_band_files(src: DatasetReader) -> bool:
    """Whether one GeoTIFF cannot tell every band's valid pixels as GDAL reads them from
    `src`: a GeoTIFF holds one nodata value for all its bands (TIFFTAG_GDAL_NODATA; GDAL
    warns "only support one value per dataset" and rio-cogeo writes band 1's) and only a
    per-dataset internal mask, which rio-cogeo drops when it is per band. True when the bands
    differ in nodata (a VRT's per-band <NoDataValue>, per-band NoDataValue in a `.aux.xml`),
    some have nodata and others none, or a band has a mask of its own; each band then
    becomes a COG of its own (cog.band_vrt)."""
    rules = [rule for rule in band_validity(src) if rule is not None]
    return len(set(rules)) > 1 or any(kind == "band" for kind, _ in rules)


def authority_code(crs: CRS) -> str | None:
    """`AUTH:CODE` (EPSG preferred) when the CRS is equivalent to that code's definition.

    Equivalence is PROJ's (`pyproj.CRS.equals`, axis order ignored), whatever the CRS is
    named: PROJ's identification confidence is name-based (PITFALLS: a Landsat `PS WGS84` is
    EPSG:3031 at 70%), so it only proposes candidates. A CRS equivalent to several codes
    that are not equivalent to each other (an `unknown` datum, which PROJ compares as a
    wildcard: EPSG:3450 and EPSG:32618 alike) only resembles them: None, and the item carries
    the WKT2 instead.
    """
    try:
        proj_crs = ProjCRS.from_wkt(crs.to_wkt())
        candidates = proj_crs.list_authority(auth_name="EPSG", min_confidence=0)
        candidates += proj_crs.list_authority(min_confidence=0)
    except CRSError:
        return None
    equal: list[tuple[str, ProjCRS]] = []
    for match in candidates:
        code = f"{match.auth_name}:{match.code}"
        if any(code == c for c, _ in equal):
            continue
        try:
            defined = ProjCRS.from_authority(match.auth_name, match.code)
        except CRSError:
            continue
        if proj_crs.equals(defined, ignore_axis_order=True):
            equal.append((code, defined))
    if not equal:
        return None
    first = equal[0][1]
    if not all(first.equals(other, ignore_axis_order=True) for _, other in equal[1:]):
        return None
    return next((c for c, _ in equal if c.startswith("EPSG:")), equal[0][0])


def _georeferencing(src: DatasetReader, label: str) -> tuple[CRS, Affine | None, str]:
    if src.crs is not None and src.transform != Affine.identity():
        return src.crs, src.transform, "transform"
    gcps, gcp_crs = src.gcps
    if gcps and gcp_crs is not None:
        return gcp_crs, None, "gcps"
    if src.rpcs is not None:
        return CRS.from_epsg(4326), None, "rpcs"
    if src.driver in SCIENTIFIC_DRIVERS:  # a world file or .prj is no advice for these
        raise RejectedInput(Reason.NOT_GEOREFERENCED, f"{label}: {_container_problem(src)}")
    if src.crs is not None:
        what = "a coordinate system but no geotransform"
    elif src.transform != Affine.identity():
        what = "a geotransform (world file) but no coordinate system: add a .prj beside it"
    else:
        what = "no georeferencing"
    raise RejectedInput(
        Reason.NOT_GEOREFERENCED,
        f"{label}: has {what}; a raster needs a CRS with a geotransform, GCPs or RPCs",
    )


# GDAL drivers of self-describing scientific containers (NetCDF, HDF): georeferencing comes
# from inside the file (CF attributes, geolocation arrays), never from world files.
SCIENTIFIC_DRIVERS = frozenset({"netCDF", "HDF5", "HDF5Image", "HDF4", "HDF4Image"})


def _container_problem(src: DatasetReader) -> str:
    """Why a NetCDF/HDF variable GDAL (and byod's CF reading, `cf.place`) could not place
    is not georeferenced, in the user's terms."""
    if is_geolocated(src):
        return (
            "placed by 2-D geolocation arrays (curvilinear/swath), which byod does not rectify yet"
        )
    if src.crs is not None:
        return "has a coordinate system but its coordinates are no regular grid"
    return (
        "has no CF grid_mapping, and its coordinates are neither a regular latitude/longitude "
        "grid (units degrees_north/degrees_east) nor placed by 2-D latitude/longitude arrays"
    )


def _check_crs(crs: CRS, src: DatasetReader, label: str, georef: str) -> None:
    """A CRS is usable when the raster's centre maps to finite longitude and latitude
    (through its geotransform, GCPs or RPCs, as `georef` says)."""
    what = {"gcps": "its GCPs", "rpcs": "its RPCs"}.get(georef, "its coordinate system")
    try:
        xs, ys = pixel_to_crs(src)(np.array([src.width / 2]), np.array([src.height / 2]))
        lon, lat = warp_transform(crs, "EPSG:4326", xs.tolist(), ys.tolist())
        ok = all(math.isfinite(v) for v in (*lon, *lat))
    # GDAL's own errors are no RasterioError: an engineering (LOCAL_CS) CRS raises
    # CPLE_NotSupportedError here, which the worker used to report as CRASHED.
    except (RasterioError, CPLE_BaseError, CRSError, ValueError) as exc:
        raise RejectedInput(
            Reason.UNKNOWN_CRS,
            f"{label}: {what} cannot be related to longitude/latitude ({_first_line(str(exc))})",
        ) from None
    if not ok:
        raise RejectedInput(
            Reason.UNKNOWN_CRS, f"{label}: {what} cannot be related to longitude/latitude"
        )


def _check_readable(src: DatasetReader, label: str) -> None:
    """Read the last block: a truncated file fails here rather than mid-conversion. An ENVI
    file, which GDAL reads zeros past the end of, is measured against its header."""
    if src.driver == "ENVI":
        _check_envi_length(src, label)
    rows, cols = src.block_shapes[0]
    window = rasterio.windows.Window(
        (src.width - 1) // cols * cols, (src.height - 1) // rows * rows, 1, 1
    )
    try:
        src.read(src.count, window=window)
    except RasterioError as exc:
        if is_out_of_memory(exc):
            # A block too big for the worker's RLIMIT_AS (a decompression bomb) is the memory
            # bound, not a truncated file: the runner turns MemoryError into MEMORY_LIMIT.
            raise MemoryError(f"{label}: {_first_line(str(exc.__cause__ or exc))}") from exc
        detail = _first_line(str(exc.__cause__ or exc))  # rasterio's own: "Read failed."
        raise RejectedInput(
            Reason.TRUNCATED, f"{label}: pixel data cannot be read ({detail})"
        ) from None


def _check_envi_length(src: DatasetReader, label: str) -> None:
    path = Path(src.name)
    try:
        item = np.dtype(src.dtypes[0]).itemsize
        size = path.stat().st_size
    except (TypeError, OSError):
        return
    expected = envi_length(src.tags(ns="ENVI"), src.width, src.height, src.count, item)
    if size < expected:
        raise RejectedInput(
            Reason.TRUNCATED,
            f"{label}: truncated: {size:,} bytes of the {expected:,} its ENVI header declares",
        )


def pixel_to_crs(src: DatasetReader) -> PixelToCrs:
    """A function mapping pixel (col, row) corner coordinates to the raster's CRS (arrays in,
    x/y arrays out, in the CRS's units; EPSG:4326 lon/lat degrees for RPCs, the GCPs' own
    CRS for GCPs).

    GDAL's priority: a geotransform with a CRS wins over GCPs, which win over RPCs. RPCs map
    to EPSG:4326 at the RPCs' own HEIGHT_OFF, their average height (no DEM is given; GDAL's
    default would be height 0). GCPs in longitude/latitude that straddle 180° are fitted on
    continuous longitudes (east of 180 as 180..360): a polynomial through 179.9 and -179.9
    would otherwise span the globe. The footprint wraps them back.
    """
    if src.crs is not None and src.transform != Affine.identity():
        transform = src.transform

        def affine(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = transform * (cols, rows)
            return np.asarray(xs), np.asarray(ys)

        return affine
    gcps, gcp_crs = src.gcps
    transformer: GCPTransformer | RPCTransformer
    if gcps:
        geographic = gcp_crs is not None and gcp_crs.is_geographic
        transformer = GCPTransformer(continuous_longitudes(gcps) if geographic else gcps)
    else:
        transformer = RPCTransformer(src.rpcs, RPC_HEIGHT=src.rpcs.height_off)

    def warped(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = transformer.xy(rows, cols, offset="ul")
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    return warped


def continuous_longitudes(gcps: list[GroundControlPoint]) -> list[GroundControlPoint]:
    """GCPs whose longitudes straddle 180° with those west of it moved to 180..360."""
    lons = np.array([g.x for g in gcps])
    if lons.max() - lons.min() <= 180:
        return gcps
    shifted = np.where(lons < 0, lons + 360.0, lons)
    if shifted.max() - shifted.min() >= lons.max() - lons.min():
        return gcps  # spread over the globe, not across 180°: leave it
    return [
        GroundControlPoint(row=g.row, col=g.col, x=float(x), y=g.y, z=g.z, id=g.id, info=g.info)
        for g, x in zip(gcps, shifted, strict=True)
    ]


def decimated_mask(src: DatasetReader) -> tuple[npt.NDArray[np.bool_], float, float]:
    """The valid-data mask pooled to at most FOOTPRINT_MASK_SIZE on a side, and the column and
    row scale back to full-resolution pixels (`mask.shape * scale` is the raster's size).
    The mask is a (rows, cols) bool array, True where data is valid.

    A mask cell is True when ANY full-resolution pixel it touches is valid (max-pooling), so
    a lone valid pixel keeps its cell: every valid pixel lies inside the union of the True
    cells. A COG's nearest-neighbour overviews skip isolated pixels (5 valid pixels in
    2100 x 2100: 3 lost), so they only settle the cells they find valid (a valid pixel at
    most one overview pixel away: the outline can only grow); every chunk of about
    MASK_CHUNK pixels a side that holds another cell is read at full resolution
    (`_pooled_chunks`). Memory is bounded by the chunk, not the raster; the cost is a full
    read of the chunks with nodata in them (benchmarks/README.md).

    Valid is GDAL's dataset mask (nodata, internal mask, alpha) and, for float bands, not
    NaN: GDAL calls NaN valid when no nodata is declared, yet it is no data by IEEE 754 and
    by every reader (xarray, odc-stac). A pixel is valid where any band is, as in GDAL.
    """
    shape = _decimated_shape(src)
    scale = src.width / shape[1], src.height / shape[0]
    floats = _float_bands(src)
    if _all_valid(src) and not floats:
        return np.ones(shape, dtype=bool), *scale
    nan_is_nodata = bool(floats) and len(floats) == src.count

    def valid(window: Window) -> np.ndarray:
        mask = src.dataset_mask(window=window) > 0
        if nan_is_nodata:
            mask &= ~np.isnan(src.read(floats, window=window)).all(axis=0)
        return np.asarray(mask)

    # Cheap and certain where it says valid: the decimated read (overviews in a COG).
    seen = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    if nan_is_nodata:
        seen &= ~np.isnan(_read_decimated(src, floats, shape)).all(axis=0)
    return _pooled_chunks(valid, (src.height, src.width), shape, seen), *scale


# Cells of the pooled mask read at once, as full-resolution pixels on a side (about): a
# COG's tile (rio-cogeo's 512), so fewer pixels far from the nodata are decoded than with
# 1024 (35% of a 10980² raster with a slanted border instead of 45%: 0.78 s of CPU, not 1.1).
MASK_CHUNK = 512


def _pooled_chunks(
    read: Callable[[Window], np.ndarray],
    size: tuple[int, int],
    shape: tuple[int, int],
    known: np.ndarray | None = None,
) -> np.ndarray:
    """Max-pool a boolean raster of `size` (rows, cols), read window by window, to `shape`.

    Cell (i, j) spans the continuous pixel extent [i*sy, (i+1)*sy] x [j*sx, (j+1)*sx]
    (sy, sx = size / shape, not whole numbers in general) and is True when any pixel
    overlapping that extent is: a pixel straddling two cells marks both, so the cells
    contain its whole extent. Cells True in `known` stay True, and a chunk whose cells are
    all known is not read.
    """
    rows, cols = shape
    if rows > size[0] or cols > size[1]:
        raise ValueError(f"a pooled mask of {shape} is finer than its raster of {size}")
    row_edges = _pixel_spans(size[0], rows)
    col_edges = _pixel_spans(size[1], cols)
    step_r = max(1, MASK_CHUNK * rows // size[0])
    step_c = max(1, MASK_CHUNK * cols // size[1])
    out = np.zeros(shape, dtype=bool) if known is None else known.copy()
    for r0 in range(0, rows, step_r):
        r1 = min(rows, r0 + step_r)
        for c0 in range(0, cols, step_c):
            c1 = min(cols, c0 + step_c)
            if out[r0:r1, c0:c1].all():
                continue
            lo_r, hi_r = row_edges[0][r0], row_edges[1][r1 - 1]
            lo_c, hi_c = col_edges[0][c0], col_edges[1][c1 - 1]
            block = read(Window(lo_c, lo_r, hi_c - lo_c, hi_r - lo_r))
            pooled = _any_over(block, row_edges[0][r0:r1] - lo_r, row_edges[1][r0:r1] - lo_r, 0)
            out[r0:r1, c0:c1] |= _any_over(
                pooled, col_edges[0][c0:c1] - lo_c, col_edges[1][c0:c1] - lo_c, 1
            )
    return out


def _pixel_spans(pixels: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """First and past-the-last pixel overlapping each of `cells` equal cells of `pixels`."""
    edges = np.arange(cells + 1) * (pixels / cells)
    first = np.floor(edges[:-1]).astype(np.int64)
    last = np.minimum(np.ceil(edges[1:]).astype(np.int64), pixels)
    return first, np.maximum(last, first + 1)


def _any_over(data: np.ndarray, starts: np.ndarray, stops: np.ndarray, axis: int) -> np.ndarray:
    """any() of boolean `data` along `axis` over each [start, stop) range, as
    `_pixel_spans` makes them: starts strictly increasing, the last stop the data's end, and
    each stop at most one past the next start (a pixel straddling two cells, in both).

    An OR over [start, next start) (`reduceat`), plus that shared pixel: 12x less CPU than
    the cumulative sums it replaces (0.96 s of a 10980² footprint; benchmarks/README.md)."""
    out = np.logical_or.reduceat(data, starts, axis=axis)
    shared = np.nonzero(stops[:-1] > starts[1:])[0]
    if shared.size:
        cells: list[slice | np.ndarray] = [slice(None)] * data.ndim
        cells[axis] = shared
        out[tuple(cells)] |= np.take(data, starts[shared + 1], axis=axis)
    return np.asarray(out)


def _nan_bands(src: DatasetReader) -> set[int]:
    """Float bands with no declared nodata that hold NaN, read decimated like the mask."""
    bands = [i for i in _float_bands(src) if src.nodatavals[i - 1] is None]
    if not bands:
        return set()
    data = _read_decimated(src, bands, _decimated_shape(src))
    return {i for i, band in zip(bands, data, strict=True) if np.isnan(band).any()}


def _decimated_shape(src: DatasetReader) -> tuple[int, int]:
    factor = max(1, math.ceil(max(src.width, src.height) / FOOTPRINT_MASK_SIZE))
    return max(1, src.height // factor), max(1, src.width // factor)


def _float_bands(src: DatasetReader) -> list[int]:
    # By name: numpy does not know rasterio's "complex_int16" (SAR data; issue 9).
    return [i for i in src.indexes if src.dtypes[i - 1].startswith("float")]


def _read_decimated(src: DatasetReader, bands: list[int], shape: tuple[int, int]) -> np.ndarray:
    """Raw values (NaN kept) by nearest neighbour, from overviews where the file has them."""
    return np.asarray(
        src.read(bands, out_shape=(len(bands), *shape), resampling=Resampling.nearest)
    )


def _all_valid(src: DatasetReader) -> bool:
    return all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums)


_OUT_OF_MEMORY_WORDS = ("out of memory", "cannot allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a failed allocation.

    rasterio wraps GDAL's "cannot allocate N bytes" in a generic "Read failed. See previous
    exception for details."; only the chained cause names the allocation.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if isinstance(current, MemoryError) or any(w in text for w in _OUT_OF_MEMORY_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


# GDAL messages carry what helps no user: a file handle's address (HFA's
# "VSIFReadL(0x5602809f85d0,6*4) @ 267167 failed in HFAEntry(). Success") and the text of
# errno 0 ("Success") after a short read.
_POINTER = re.compile(r"\b0x[0-9a-fA-F]+,\s*")
_ERRNO_ZERO = re.compile(r"\.?\s*Success\.?$")


def _first_line(text: str) -> str:
    """The first line of a GDAL message, cleaned of addresses and a trailing 'Success'."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = _ERRNO_ZERO.sub("", _POINTER.sub("", line)).strip()
    return line or "no detail"
