"""Uploads are untrusted: what one input may make GDAL read, and the bounds checked before work.

An input may only make GDAL read files inside its own source folder tree (issue 11). The OS
wall is the worker's Landlock sandbox (`confine.py`, applied by `runner` before any input is
touched): whatever opens a file outside fails there. This module is the first wall, so the
rejection says what was wrong: formats that name other files (VRT, nested and inline VRTs,
VRTProcessedDataset arguments, `.ovr`/`.aux.xml` sidecars of an input and of a VRT's
sources, raw-band VRTs, ER Mapper headers, GDAL `/vsi` paths and connection strings) are
checked in the worker before any pixel is read:

1. before GDAL opens anything, each VRT among the input and its sidecars is parsed with
   defusedxml and every file it names is resolved (`relativeToVRT`, then symbolic links);
   open options naming a path (ROOT_PATH) are refused;
2. after GDAL opened it, every file GDAL says it uses (`GetFileList`, rasterio's
   `DatasetReader.files`) must resolve inside the source folder, and drivers that reach
   network services are refused.

GDAL's own switches are set in every worker too (`worker_env.worker_environment`), but
PITFALLS: they do not stop a VRT's plain file sources, and the rasterio wheel's GDAL 3.10 ignores
`GDAL_VRT_ENABLE_RAWRASTERBAND` (measured: a raw band on /etc/passwd is still read), so they
are a third wall only. `GDAL_DISABLE_READDIR_ON_OPEN` is left alone: `EMPTY_DIR` would hide
the sidecars byod relies on (world files, `.prj`, `.msk`), and `TRUE` only stops directory
listings, not reads.

Not parsed: HDF5/NetCDF-4 external storage, virtual datasets and external links (HDF5
resolves them inside the library; GDAL does not list them); the sandbox is the wall there,
and without Landlock nothing stops them (README, "Untrusted uploads").

Rejections name the CLASS of reference ("an absolute path outside the source", "a network
URL", ...), never the path or URL itself: a report must not leak what an attacker probed.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast
from xml.etree.ElementTree import Element

import numpy as np
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader

from byod.cog import overview_levels
from byod.rasters import open_dataset
from byod.reasons import Reason, RejectedInput
from byod.sources import is_sidecar_name

if TYPE_CHECKING:
    from xml.etree.ElementTree import ElementTree as XmlDocument

# Classes of references, as the report names them.
NETWORK = "a network URL"
VSI = "a GDAL /vsi path"
CONNECTION = "a GDAL connection string"
ABSOLUTE = "an absolute path outside the source"
RELATIVE = "a relative path leading outside the source"
LINK = "a symbolic link leading outside the source"
SERVICE = "a network service driver"
NESTING = "VRTs nested too deeply"
OPTION = "a GDAL open option naming a path"
BROKEN = "XML it may not read, or with entities or a DTD (which can name other files)"

# How deep VRTs may nest (a VRT naming a VRT ...); GDAL itself stops at a similar depth.
MAX_VRT_DEPTH = 8
# How much of a file is sniffed for a VRT root element (GDAL's VRT driver looks at the header).
_SNIFF_BYTES = 64 * 1024
# `scheme://` URLs and GDAL's `DRIVER:` connection strings (two or more letters: not `C:`).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONNECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:")
# Open options of a VRT source that name files or folders (ROOT_PATH, ...): refused outright.
# An ER Mapper header's data file (`DataFile = "name"`).
_ERS_DATA_FILE = re.compile(r'^\s*DataFile\s*=\s*"([^"]*)"', re.MULTILINE | re.IGNORECASE)
_PATH_OPTION = re.compile(r"PATH|FILE|DIR|URL|ROOT", re.IGNORECASE)
# `scheme://` names GDAL itself resolves (vrt://path?options), not network protocols.
GDAL_SCHEMES = frozenset({"vrt"})
# Drivers that open network services rather than files (GDAL's driver list, "network" ones).
NETWORK_DRIVERS = frozenset(
    {"WMS", "WMTS", "WCS", "DAAS", "EEDA", "EEDAI", "PLMOSAIC", "PLSCENES", "HTTP", "OGCAPI",
     "STACIT", "STACTA", "NGW", "PostGISRaster", "GTI", "RDB", "ESRIC", "TileDB"}
)  # fmt: skip


# What stays free on the temp disk, whatever the budget (--disk-budget).
DISK_MARGIN_BYTES = 1024**3
# Tile sides of the files a conversion writes: rio-cogeo's profiles (blockxsize 512) and
# GDAL's GeoTIFF default (256) for the staged TILED=YES copies.
COG_TILE = 512
STAGED_TILE = 256
# Per file: TIFF headers, tile offset tables, and what deflate adds to incompressible tiles
# (zlib: 5 bytes per 16 KB block), as a fraction and in bytes.
FILE_SLACK = (0.01, 64 * 1024)


@dataclass(frozen=True)
class Checked:
    """What the parsed check found: whether any VRT of the input has raw bands (all inside)."""

    raw_bands: bool = False


def reference_class(reference: str, base: Path, root: Path) -> str | None:
    """None when `reference` (as a VRT or GDAL names it) is a file inside `root`; else its class.

    `base` is the folder a relative reference is resolved against (the VRT's own folder with
    `relativeToVRT="1"`, the worker's working directory without). `root` is resolved.
    """
    text = reference.strip()
    if _URL.match(text):
        scheme = text.split(":", 1)[0].lower()
        return CONNECTION if scheme in GDAL_SCHEMES else NETWORK
    if text.startswith("/vsi"):
        return VSI
    if _CONNECTION.match(text):
        return CONNECTION
    path = Path(text) if os.path.isabs(text) else base / text
    plain = Path(os.path.normpath(path))
    if not _inside(plain, root):
        return ABSOLUTE if os.path.isabs(text) else RELATIVE
    if not _inside(path.resolve(), root):
        return LINK
    return None


def check_references(path: Path, root: Path, label: str) -> Checked:
    """Parse every VRT among `path` and the files GDAL may open beside it (`x.tif.ovr`, `x.ovr`,
    `x.tif.msk`, ...), recursively through nested VRTs; raise RejectedInput(outside_source)
    for the first reference that is not a file inside `root`.

    `root` is the source folder (or, for a remote source, the folder it was fetched to).
    """
    root = root.resolve()
    where = reference_class(str(path), Path.cwd(), root)
    if where is not None:
        raise _outside(label, where)
    raw = _check_file(path, root, label, depth=0, seen=set())
    for companion in _companions(path):
        raw |= _check_companion(companion, root, label, depth=0, seen=set())
    return Checked(raw_bands=raw)


def check_opened(files: Iterable[str], driver: str, root: Path, label: str) -> None:
    """After GDAL opened a dataset: every file it uses (its `GetFileList`) inside `root`, and
    no network-service driver. Raises RejectedInput(outside_source)."""
    if driver in NETWORK_DRIVERS:
        raise _outside(label, SERVICE)
    root = root.resolve()
    for name in files:
        if "<VRTDataset" in name:  # GDAL lists an inline VRT source after its parent's folder
            _check_inline(name[name.index("<VRTDataset") :], root, label, depth=1, seen=set())
            continue
        where = reference_class(name, Path.cwd(), root)
        if where is not None:
            raise _outside(label, where)
        _check_vrt(Path(name), root, label, depth=0, seen=set())


def guard_inputs(
    paths: Iterable[Path], root: Path, *, budget: int | None, workdir: Path, label: str,
    stages: Callable[[DatasetReader], bool] = lambda src: False, workers: int = 1,
) -> None:  # fmt: skip
    """Everything checked before one input's work starts, in its worker: the references of
    each raster file (`check_references`, then `check_opened` on what GDAL opened, its
    subdatasets too) and the temp space their conversion needs at its peak
    (`peak_temp_bytes`, with `stages(src)` saying whether that raster is first copied to a
    staged GeoTIFF; `check_disk` with `budget` and `workers`).

    Raises RejectedInput: outside_source, too_large, or the reasons `open_dataset` gives.
    """
    paths = list(paths)
    raw = False
    for path in paths:
        raw |= check_references(path, root, label).raw_bands
    if raw:  # every raw band was checked to lie inside the source
        os.environ["GDAL_VRT_ENABLE_RAWRASTERBAND"] = "YES"
    needed = 0
    for path in paths:
        with open_dataset(path) as src:
            check_opened(src.files, src.driver, root, label)
            names = list(src.subdatasets)
            if not names:
                needed += _peak_of(src, stages)
        for name in names:
            with open_dataset(name) as sub:
                check_opened(sub.files, sub.driver, root, label)
                needed += _peak_of(sub, stages)
    check_disk(needed, budget, workdir, label, workers)


def _peak_of(src: DatasetReader, stages: Callable[[DatasetReader], bool]) -> int:
    return peak_temp_bytes(src.width, src.height, src.dtypes, _has_mask(src), staged=stages(src))


def raw_bytes(width: int, height: int, dtypes: Iterable[str], mask: bool = False) -> int:
    """Bytes of one uncompressed full-resolution copy: every band at its data type's size and
    a one-byte mask band when the raster has one (GDAL_TIFF_INTERNAL_MASK)."""
    # rasterio's "complex_int16" is unknown to numpy: two int16, the size of an int32.
    sizes = (np.dtype("int32" if d == "complex_int16" else d).itemsize for d in dtypes)
    return width * height * (sum(sizes) + (1 if mask else 0))


def peak_temp_bytes(
    width: int, height: int, dtypes: Iterable[str], mask: bool = False, *, staged: bool = False
) -> int:
    """Bytes one raster's conversion has on the temp disk at its peak, file by file as
    work.py, cog.py and band_units.py write them in the job's folder, each counted
    uncompressed in whole tiles (edge tiles are padded: a 1400² raster in 512² tiles takes
    1536²) plus `FILE_SLACK`:

    - `staged`: a tiled GeoTIFF copy made first and kept while converting (work._staged for
      a `.prj` GDAL ignored or a CF placement, cog._stage_if_needed for a driver reporting a
      GCP CRS without GCPs), in GDAL's default `STAGED_TILE`² tiles, no overviews;
    - rio-cogeo's temp file (`in_memory=False`: uncompressed, beside the output) in
      `COG_TILE`² tiles with every overview level `cog.overview_levels` asks for;
    - the output COG, written while that temp file exists, counted as large as the temp file
      (deflate/zstd do not shrink noise);
    - band units (band_units.keep_band_units): one more copy of the COG, made after the temp
      file is gone, so it takes the temp file's place and adds nothing to the peak.
    """
    per_pixel = raw_bytes(1, 1, dtypes, mask)
    levels = overview_levels(width, height, COG_TILE)
    cog = sum(_tiled(-(-width // 2**i), -(-height // 2**i), per_pixel, COG_TILE)
              for i in range(levels + 1))  # fmt: skip
    copy = _tiled(width, height, per_pixel, STAGED_TILE) if staged else 0
    return sum(_slack(n) for n in (copy, cog, cog) if n)


def _tiled(width: int, height: int, per_pixel: int, tile: int) -> int:
    return -(-width // tile) * tile * -(-height // tile) * tile * per_pixel


def _slack(size: int) -> int:
    return size + int(size * FILE_SLACK[0]) + FILE_SLACK[1]


def default_disk_budget(folder: Path, workers: int = 1) -> int:
    """Free bytes on the temp disk of `folder` minus `DISK_MARGIN_BYTES` (at least 0), shared
    by `workers` conversions that may run at once (each gets its part)."""
    return max(0, shutil.disk_usage(folder).free - DISK_MARGIN_BYTES) // max(1, workers)


def check_disk(needed: int, budget: int | None, folder: Path, label: str, workers: int = 1) -> None:
    """Reject as too_large an input whose conversion would need more than `needed` bytes of
    temp space, before any conversion writes a byte. The limit is the smaller of `budget`
    (bytes, `--disk-budget`: a fixed per-input cap, default config.DEFAULT_DISK_BUDGET_MB;
    None: no cap of its own) and the space now free in `folder` less DISK_MARGIN_BYTES,
    divided by the `workers` that may convert at once (`default_disk_budget`)."""
    free = default_disk_budget(folder, workers)
    limit = free if budget is None else min(budget, free)
    if needed > limit:
        which = "--disk-budget" if budget is not None and budget <= free else (
            f"free temp space less {DISK_MARGIN_BYTES // 1024**3} GB"
            + (f", shared by {workers} workers" if workers > 1 else ""))  # fmt: skip
        raise RejectedInput(
            Reason.TOO_LARGE,
            f"{label}: converting it needs about {needed / 1024**3:,.1f} GB of temp space, "
            f"over the {limit / 1024**3:,.1f} GB allowed ({which}); not converted",
        )


def _check_vrt(path: Path, root: Path, label: str, depth: int, seen: set[Path]) -> bool:
    """Check one file if it is a VRT (by content, as GDAL's driver identifies it); True when it
    (or a VRT it names) has raw bands."""
    if not _is_vrt(path):
        return False
    if depth >= MAX_VRT_DEPTH:
        raise _outside(label, NESTING)
    resolved = path.resolve()
    if resolved in seen:
        return False  # GDAL refuses the loop itself; nothing new to read here
    seen.add(resolved)
    tree = _parse(path, label)
    top = cast(Element, tree.getroot())  # a parsed document always has its root
    return _check_tree(top, path.parent, root, label, depth, seen)


def _parse(path: Path, label: str) -> XmlDocument:
    """A VRT or PAM file's XML. Entities or a DTD (what defusedxml refuses) are outside_source
    (they can name other files), and so is one the worker may not read (the sandbox denies
    what lies outside: a sidecar linked out); XML cut short or malformed is a damaged file:
    truncated."""
    try:
        return ElementTree.parse(str(path))
    except (DefusedXmlException, OSError):
        raise _outside(label, BROKEN) from None
    except ElementTree.ParseError as exc:
        raise RejectedInput(
            Reason.TRUNCATED, f"{label}: damaged or truncated XML in {path.name} ({exc})"
        ) from None


def _check_file(path: Path, root: Path, label: str, depth: int, seen: set[Path]) -> bool:
    """A file GDAL opens: a VRT's references, or an ER Mapper header's `DataFile` (GDAL's ERS
    driver reads the data file the header names, relative to the header's folder)."""
    if _is_ers(path):
        for name in _ERS_DATA_FILE.findall(_head(path).decode("latin-1")):
            where = reference_class(name, path.parent, root)
            if where is not None:
                raise _outside(label, where)
        return False
    return _check_vrt(path, root, label, depth, seen)


def _check_tree(
    top: Element, folder: Path, root: Path, label: str, depth: int, seen: set[Path]
) -> bool:
    """Check every reference of one parsed VRT (`folder`: where its relative names start);
    True when it (or a VRT it names) has raw bands. GDAL's VRT format (gdal_vrttut):
    `*Filename` and `SourceDataset` elements, VRTProcessedDataset `<Argument>`s named
    `*_filename*` (LocalScaleOffset gain/offset, Trimming), `<OpenOptions>` of a source, and a
    source that is itself an inline `<VRTDataset>` string."""
    raw = False
    for element in top.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "VRTRasterBand" and element.get("subClass") == "VRTRawRasterBand":
            raw = True
        if tag == "OOI" and _PATH_OPTION.search(_attribute(element, "key") or ""):
            raise _outside(label, OPTION)  # ROOT_PATH re-roots a nested VRT's relative names
        for name, base in _references(element, tag, folder):
            if name.startswith("<"):  # GDAL opens a name starting with <VRTDataset as XML
                raw |= _check_inline(name, root, label, depth + 1, seen)
                continue
            where = reference_class(name, base, root)
            if where is not None:
                raise _outside(label, where)
            target = Path(name) if os.path.isabs(name) else base / name
            if tag == "SourceFilename" and not os.path.lexists(target):
                raise RejectedInput(
                    Reason.UNREADABLE,
                    f"{label}: broken reference: its source {name} does not exist",
                )
            raw |= _check_file(target, root, label, depth + 1, seen)
            for companion in _companions(target):  # the source's own .ovr, .aux.xml, .msk
                raw |= _check_companion(companion, root, label, depth + 1, seen)
    return raw


def _references(element: Element, tag: str, folder: Path) -> list[tuple[str, Path]]:
    """The names one VRT element makes GDAL open, each with the folder a relative name is
    read from (both candidates where the VRT's flags are not parsed here)."""
    text = (element.text or "").strip()
    if not text:
        return []
    if tag.endswith("Filename") or tag == "SourceDataset":
        relative = _attribute(element, "relativeToVRT") == "1"
        return [(text, folder if relative else Path.cwd())]
    if tag == "Argument" and "filename" in (_attribute(element, "name") or "").lower():
        return [(text, folder), (text, Path.cwd())]  # the step's relativeToVRT argument
    return []


def _check_inline(text: str, root: Path, label: str, depth: int, seen: set[Path]) -> bool:
    """An inline VRT (XML as a source's name): checked like a file, relative names from the
    working directory, as GDAL reads a VRT that has no file."""
    if depth >= MAX_VRT_DEPTH:
        raise _outside(label, NESTING)
    try:
        inline = ElementTree.fromstring(text)
    except DefusedXmlException:
        raise _outside(label, BROKEN) from None
    except ElementTree.ParseError as exc:
        raise RejectedInput(
            Reason.TRUNCATED, f"{label}: damaged inline VRT XML in a source name ({exc})"
        ) from None
    return _check_tree(inline, Path.cwd(), root, label, depth, seen)


def _check_companion(path: Path, root: Path, label: str, depth: int, seen: set[Path]) -> bool:
    """A sidecar GDAL opens beside a raster: a VRT (an `.ovr` may be one), or a PAM `.aux.xml`
    whose OVERVIEW_FILE names the overviews (GDAL's PAM, `:::BASE:::` for a name relative to
    the sidecar's folder)."""
    raw = _check_vrt(path, root, label, depth, seen)
    if not path.name.lower().endswith(".aux.xml"):
        return raw
    tree = _parse(path, label)
    for element in tree.iter("MDI"):
        if (_attribute(element, "key") or "").upper() != "OVERVIEW_FILE" or not element.text:
            continue
        name = element.text.strip().removeprefix(":::BASE:::")
        where = reference_class(name, path.parent, root)
        if where is not None:
            raise _outside(label, where)
        target = Path(name) if os.path.isabs(name) else path.parent / name
        raw |= _check_vrt(target, root, label, depth + 1, seen)
    return raw


def _has_mask(src: DatasetReader) -> bool:
    return any(MaskFlags.per_dataset in flags for flags in src.mask_flag_enums)


def _head(path: Path) -> bytes:
    """The first `_SNIFF_BYTES` of a file (b"" when it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(_SNIFF_BYTES)
    except OSError:
        return b""


def _is_vrt(path: Path) -> bool:
    return b"<VRTDataset" in _head(path)


def _is_ers(path: Path) -> bool:
    # GDAL's ERS driver identifies a header by these words near its start.
    return path.suffix.lower() == ".ers" and b"DatasetHeader" in _head(path)[:1024]


def _companions(path: Path) -> list[Path]:
    """Sidecars GDAL may open by name beside a raster (`x.tif.ovr`, `x.ovr`, `x.tif.msk`,
    `x.aux.xml`, ...): sidecar-named files in its folder that extend its name or stem."""
    names = _listing(path.parent)
    found = set()
    for prefix in (path.name, path.stem + "."):  # sorted names: a prefix's are contiguous
        i = bisect.bisect_left(names, prefix)
        while i < len(names) and names[i].startswith(prefix):
            if names[i] != path.name and is_sidecar_name(names[i]):
                found.add(names[i])
            i += 1
    return sorted(path.parent / name for name in found)


# Issue 13: listing a folder of 5,000 rasters for each of them took 37 ms an input (a batch
# of small inputs shares one worker): a folder's names are kept while its mtime is unchanged
# (an entry added or removed changes it).
_LISTINGS: dict[Path, tuple[int, tuple[str, ...]]] = {}


def _listing(folder: Path) -> tuple[str, ...]:
    """The names in `folder`, sorted (() when it cannot be listed), cached by its mtime."""
    try:
        mtime = folder.stat().st_mtime_ns
        cached = _LISTINGS.get(folder)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        names = tuple(sorted(os.listdir(folder)))
    except OSError:
        return ()
    if len(_LISTINGS) >= 64:
        _LISTINGS.clear()
    _LISTINGS[folder] = (mtime, names)
    return names


def _attribute(element: object, name: str) -> str | None:
    """An XML attribute matched case-insensitively (GDAL writes `relativeToVRT`, and reads
    `relativetoVRT` too)."""
    attributes: dict[str, str] = getattr(element, "attrib", {})
    return next((v.strip() for k, v in attributes.items() if k.lower() == name.lower()), None)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _outside(label: str, where: str) -> RejectedInput:
    return RejectedInput(
        Reason.OUTSIDE_SOURCE,
        f"{label}: refers to {where}; only files inside the source folder may be read",
    )
