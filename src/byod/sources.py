"""Discover inputs in a local folder: raster candidates, their sidecars, and fingerprints.

A sidecar (world file, .prj, .aux.xml, .msk, .hdr, metadata XML/TXT) belongs to the raster
whose name it extends and never becomes an item of its own. Discovery never raises for one
bad entry: it turns each into a rejection (see `reasons.py`) and goes on.
"""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from byod.errors import ConfigurationError
from byod.keys import CONFIG_NAMES, OUTPUT_MARKER, ROOT_ID, ROOT_KEY
from byod.products import is_product_metadata
from byod.reasons import Reason
from byod.records import Candidate
from byod.scenes import auxiliary_of
from byod.vrt_members import vrt_members

# Extensions GDAL reads as rasters: the ones its raster drivers declare (identify.py, e.g.
# `.lcp` FARSITE landscapes; `raster_extensions`), plus these, which byod knows without
# asking GDAL (and which some drivers lack: ENVI/EHdr data files, HDF, KEA). Files with other
# extensions are candidates when GDAL identifies them (`_pair`).
KNOWN_RASTER_EXTENSIONS = frozenset(
    {
        ".tif", ".tiff", ".gtif", ".jp2", ".j2k", ".png", ".jpg", ".jpeg", ".img", ".vrt",
        ".nc", ".nc4", ".hdf", ".h5", ".hdf5", ".he5", ".bil", ".bsq", ".bip", ".dat",
        ".envi", ".asc", ".dem", ".kea", ".ers", ".rst",
    }
)  # fmt: skip

# Sidecar endings: GDAL reads most of them itself when it opens the raster beside them.


def world_file_extensions(extension: str) -> tuple[str, ...]:
    """The world file extensions GDAL looks for beside a raster of `extension` (`.gif`):
    its first and last letter + `w` (`.gfw`), the extension + `w` (`.gifw`), and `.wld`
    (GDALReadWorldFile2, which the drivers call with and without `wld`)."""
    ext = extension.lower().lstrip(".")
    derived = [f".{ext[0]}{ext[-1]}w"] if len(ext) >= 2 else []
    return tuple(dict.fromkeys([*derived, *([f".{ext}w"] if ext else []), ".wld"]))


# The world file names of KNOWN_RASTER_EXTENSIONS (`.tfw`, `.tifw`, `.j2w`, `.jp2w`, `.blw`,
# ... and `.wld`); those of GDAL's other extensions are in `world_file_extension_set`. Each
# ends in `w` or is `.wld`; none of them is itself a raster extension.
KNOWN_WORLD_FILE_EXTENSIONS = frozenset(
    w for e in KNOWN_RASTER_EXTENSIONS for w in world_file_extensions(e))  # fmt: skip
# What GDAL's EHdr driver reads beside a `.bil`/`.bip`/`.bsq` (or any data file with a
# `.hdr`): the colour table and the statistics, besides `.hdr` and `.prj`.
EHDR_SIDECAR_ENDINGS = (".clr", ".stx")
EHDR_EXTENSIONS = frozenset({".bil", ".bip", ".bsq", ".flt"})
# Names that look like a sidecar: never taken for a raster themselves (GDAL identifies an
# `x.tif.ovr` or `x.tif.msk` as a GeoTIFF) and checked by untrusted.py before GDAL opens
# their raster. Whether one belongs to a raster is decided by `sidecar_names`.
KNOWN_SIDECAR_EXTENSIONS = KNOWN_WORLD_FILE_EXTENSIONS | {
    ".prj", ".aux", ".msk", ".ovr", ".hdr", ".xml", ".txt", ".json", ".imd", ".rpb", ".rpc",
    *EHDR_SIDECAR_ENDINGS,
}  # fmt: skip


# GDAL's extension list imports rasterio (0.1-0.2 s of a no-op that needs no GDAL): it is
# asked for only when a name's extension is none of byod's own (`is_raster_name`).
@cache
def raster_extension_set() -> frozenset[str]:
    """Every extension byod takes for a raster's (RASTER_EXTENSIONS): GDAL's and its own."""
    from byod.identify import gdal_raster_extensions

    return gdal_raster_extensions() | KNOWN_RASTER_EXTENSIONS


@cache
def world_file_extension_set() -> frozenset[str]:
    """Every world file extension of a raster extension (WORLD_FILE_EXTENSIONS)."""
    found = (w for e in raster_extension_set() for w in world_file_extensions(e))
    return KNOWN_WORLD_FILE_EXTENSIONS | frozenset(found)


def __getattr__(name: str) -> frozenset[str]:
    """RASTER_EXTENSIONS, WORLD_FILE_EXTENSIONS and SIDECAR_EXTENSIONS, computed when first
    asked for (they hold GDAL's extensions: see `raster_extension_set`)."""
    if name == "RASTER_EXTENSIONS":
        return raster_extension_set()
    if name == "WORLD_FILE_EXTENSIONS":
        return world_file_extension_set()
    if name == "SIDECAR_EXTENSIONS":
        return KNOWN_SIDECAR_EXTENSIONS | world_file_extension_set()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SIDECAR_SUFFIXES = (".aux.xml", ".msk", ".ovr", "_rpc.txt")
# What producers write beside a raster `x.tif`, by GDAL's own lookups: endings added to the
# whole name (`x.tif.aux.xml` PAM, `x.tif.ovr` overviews, `x.tif.msk` mask, `x.bil.hdr` ENVI
# header, `x.tif.aux`), and endings that replace its extension (the world files GDAL derives
# from the extension, `world_file_extensions`: `x.tfw`/`x.tifw`/`x.wld` for a `.tif` only;
# `x.prj`, `x.hdr`, `x.aux`, `x.ovr`, DigitalGlobe's `x.IMD`/`x.RPB`/`x.XML`, `x_RPC.TXT`;
# EHdr's `x.clr`/`x.stx`). Compared without case, as GDAL also tries upper- and lower-case.
NAME_SIDECAR_ENDINGS = (".aux.xml", ".ovr", ".msk", ".hdr", ".aux")
STEM_SIDECAR_ENDINGS = (".prj", ".hdr", ".aux", ".ovr", ".imd", ".rpb", ".rpc", ".xml", "_rpc.txt")

# Names that are never inputs: our own outputs and the usual clutter of a data folder.
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", *CONFIG_NAMES})
# A folder's table of per-file values (columns: file, and cloud_cover, datetime,
# start_datetime, end_datetime as the user knows them).
USER_METADATA_NAME = "byod-metadata.csv"
USER_METADATA_COLUMNS = ("file", "cloud_cover", "datetime", "start_datetime", "end_datetime")

HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class DiscoveryProblem:
    """An entry that cannot be an input, with the reason."""

    relpath: str
    reason: Reason
    message: str


@dataclass
class Discovery:
    """What listing a source found: the inputs, the files refused (with why), the files
    ignored, and notes for the report."""

    candidates: list[Candidate] = field(default_factory=list)
    problems: list[DiscoveryProblem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files that are neither raster nor sidecar
    notes: list[str] = field(default_factory=list)  # e.g. band files left out of a scene
    # Folders of byod's own output (an earlier run's target or catalog) not walked: what
    # lies below was not listed, so --prune removes nothing there (planning._pruned).
    outputs: list[str] = field(default_factory=list)


def _lower_ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def is_raster_name(name: str) -> bool:
    """Whether a file name's extension (any case) is one byod ingests (`RASTER_EXTENSIONS`)
    and the name is not a sidecar's."""
    if is_sidecar_name(name):
        return False
    ext = _lower_ext(name)
    return ext in KNOWN_RASTER_EXTENSIONS or ext in raster_extension_set()


def is_sidecar_name(name: str) -> bool:
    """Whether a file name is a sidecar GDAL or byod reads beside a raster (world files,
    `.aux.xml`, `.prj`, `.msk`, `.ovr`, metadata: `SIDECAR_SUFFIXES`/`SIDECAR_EXTENSIONS`)."""
    lower = name.lower()
    if lower.endswith(SIDECAR_SUFFIXES):
        return True
    ext = _lower_ext(lower)
    # Only a name ending in `w` can be a world file of one of GDAL's other extensions.
    return ext in KNOWN_SIDECAR_EXTENSIONS or (ext[-1:] == "w" and ext in
                                               world_file_extension_set())  # fmt: skip


def _looks_like_raster(path: str) -> bool:
    from byod.identify import looks_like_raster  # GDAL: only for a file of another extension

    return looks_like_raster(path)


def discover(source: Path, outputs: Iterable[Path] = ()) -> Discovery:
    """Walk a local folder recursively, pair sidecars.

    `outputs` are byod's own target and catalog folders: where they lie inside the source
    (`byod ingest .` with the default `data/` and `catalogs/`), they are not read as inputs.

    Links are followed only where they stay inside the source folder (after resolving them);
    others are listed as ignored with the reason (issue 11: uploads are untrusted). Loops are
    detected; a file reached twice (two links, a link and the file, hard links) is one input.
    Names that are not valid UTF-8 are rejected (`bad_name`), shown with their bytes escaped.
    """
    found = Discovery()
    files: list[tuple[str, str]] = []
    skip = {(st.st_dev, st.st_ino) for st in (_stat(p) for p in outputs) if st is not None}
    _walk(source.resolve(), source.resolve(), set(), files, found, frozenset(skip))
    _pair(files, {}, found, identify=_looks_like_raster)
    _drop_duplicates(found)
    _join_vrt_members(found)
    user_metadata_notes(found)
    return found


def _join_vrt_members(found: Discovery) -> None:
    """Fingerprint a local VRT over the inputs it reads (`vrt_members`, through nested VRTs
    too): they become its sidecars, so an edit of a member ingests the VRT again (its own
    bytes do not change). The members stay inputs of their own (a VRT the worker refuses
    must lose nothing); when the VRT is stored, the report notes that their pixels are
    stored twice (`Candidate.notes`)."""
    vrts = [c for c in found.candidates if _lower_ext(c.path) == ".vrt"]
    if not vrts:
        return
    by_real = {os.path.realpath(c.path): c for c in found.candidates}
    joined = {}
    for vrt in vrts:
        members = _closure(vrt, by_real)
        if not members:
            continue
        extra = [p for m in members for p in (m.path, *m.sidecars)]
        shown = ", ".join(m.relpath for m in members[:5]) + (", ..." * (len(members) > 5))
        note = (f"{vrt.relpath}: a VRT of {len(members)} input(s) of the source ({shown}): "
                "their pixels are stored in its item and in their own; leave the VRT or "
                "them out of the source if one is enough")  # fmt: skip
        joined[vrt.relpath] = replace(vrt, sidecars=tuple(dict.fromkeys((*vrt.sidecars, *extra))),
                                      notes=(*vrt.notes, note))  # fmt: skip
    found.candidates = [joined.get(c.relpath, c) for c in found.candidates]


def _closure(vrt: Candidate, by_real: dict[str, Candidate]) -> list[Candidate]:
    """The inputs a VRT reads, through the VRTs among them, each once."""
    todo, seen, members = [vrt.path], {os.path.realpath(vrt.path)}, []
    while todo:
        for member in vrt_members(Path(todo.pop())):
            real = str(member)
            if real in seen or real not in by_real:
                continue  # no input of the source: the worker's guard decides about it
            seen.add(real)
            members.append(by_real[real])
            todo.append(real)
    return members


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat() if path.is_dir() else None
    except OSError:
        return None


def _drop_duplicates(found: Discovery) -> None:
    """Keep one candidate per file on disk (device, inode): the one reached without a link,
    else the first by path; the others are listed as ignored, with a note naming the kept."""
    kept: dict[tuple[int, int], Candidate] = {}
    order = sorted(found.candidates, key=lambda c: (os.path.islink(c.path), c.relpath))
    dropped = set()
    for candidate in order:
        try:
            st = os.stat(candidate.path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in kept:
            dropped.add(candidate.relpath)
            found.ignored.append(candidate.relpath)
            found.notes.append(f"{candidate.relpath}: ignored: the same file as "
                               f"{kept[key].relpath}, ingested once")  # fmt: skip
        else:
            kept[key] = candidate
    found.candidates = [c for c in found.candidates if c.relpath not in dropped]
    found.ignored.sort()


def discover_listing(listing: Iterable[tuple[str, str]]) -> Discovery:
    """Pair sidecars among (key, version) pairs listed in a remote store."""
    found = Discovery()
    versions = dict(listing)
    names = [(key, key) for key in versions if not _hidden(key)]
    _pair(names, versions, found)
    return found


def _hidden(relpath: str) -> bool:
    return any(part.startswith(".") or part in IGNORED_NAMES for part in relpath.split("/"))


def _pair(
    files: list[tuple[str, str]],
    versions: dict[str, str],
    found: Discovery,
    identify: Callable[[str], bool] | None = None,
) -> None:
    """Sort files into rasters (with their sidecars), sidecars and ignored files.

    A raster by name (RASTER_EXTENSIONS), an ENVI/EHdr data file by its `.hdr`, or, for a
    file of any other extension that is no sidecar, by `identify` (GDAL's driver
    identification of its header; local files only: a listing has no bytes to look at).
    """
    by_dir: dict[str, list[tuple[str, str]]] = {}
    for path, rel in files:
        by_dir.setdefault(posixpath.dirname(rel), []).append((path, rel))
    metadata_by_dir = {
        folder: [(p, r) for p, r in entries if is_product_metadata(r)]
        for folder, entries in by_dir.items()
    }
    auxiliary: dict[str, list[tuple[str, str]]] = {}  # by product family: (product, relpath)
    for folder, all_entries in by_dir.items():
        entries = _without_auxiliary(all_entries, auxiliary, found)
        names = [posixpath.basename(r) for _, r in entries]
        # ENVI/EHdr data files often have no raster extension: a `.hdr` beside them marks them.
        hdr_stems = {n[:-4] for n in names if n.lower().endswith(".hdr")}
        hdr_lower = {n.lower() for n in hdr_stems}
        rasters = [
            (p, r)
            for p, r in entries
            if is_raster_name(_name(r))
            or (not is_sidecar_name(_name(r))
                and (_name(r) in hdr_stems or os.path.splitext(_name(r))[0] in hdr_stems
                     or (identify is not None and _name(r) != USER_METADATA_NAME
                         and identify(p))))
        ]  # fmt: skip
        # EHdr/ENVI data files: a `.hdr` by stem or by whole name; they have `.clr`/`.stx` too.
        ehdr = {r for _, r in rasters
                if _name(r).lower() in hdr_lower or _stem(r).lower() in hdr_lower}  # fmt: skip
        # A file is a raster input only if it is no sidecar of another raster beside it: the
        # `.clr`, `.stx` and `.blw` of a `v.bil` share its `.hdr` and GDAL's EHdr driver
        # opens them too, but GDAL reads them for `v.bil` (its `src.files`).
        of_others = {n for _, r in rasters for n in sidecar_names(_name(r), r in ehdr)}
        rasters = [(p, r) for p, r in rasters if _name(r).lower() not in of_others]
        masks = _cloud_masks(rasters)
        user = next((p for p, r in entries if _name(r) == USER_METADATA_NAME), None)
        # Each raster's sidecars are looked up by the names they would have: scanning every
        # file for every raster made a folder of 1,000 rasters cost 1,000,000 checks.
        raster_rels = {r for _, r in rasters}
        by_name = {_name(r).lower(): (p, r) for p, r in entries if r not in raster_rels}
        paired: set[str] = set()
        # By dict, not by scanning `rasters` per raster (a no-op over 1,000 inputs in one
        # folder spent 2 of its 9 % here).
        mask_rels, path_of = set(masks.values()), {r: p for p, r in rasters}
        for path, rel in rasters:
            if rel in mask_rels:
                continue  # a cloud mask of another raster: metadata, not an item
            extras = [p for p, _ in _sidecars_of(rel, by_name, rel in ehdr)]
            metadata = _metadata_for(rel, folder, metadata_by_dir)
            mask_rel = masks.get(rel)
            mask = path_of.get(mask_rel) if mask_rel is not None else None
            extras += metadata + ([mask] if mask else []) + ([user] if user else [])
            if mask and mask_rel is not None:
                extras += [p for p, _ in _sidecars_of(mask_rel, by_name)]
            paired.update(extras)
            extras = list(dict.fromkeys(extras))
            found.candidates.append(
                Candidate(path, rel, tuple(extras),
                          tuple(versions[p] for p in (path, *extras) if p in versions),
                          tuple(metadata), mask, user)
            )  # fmt: skip
        # Listed: files that are no raster, and no sidecar by GDAL's names nor a paired
        # one (a README.txt, notes.xml, x.json); product metadata may serve sub-folders.
        for path, rel in entries:
            if (
                rel not in raster_rels
                and path not in paired
                and not _gdal_sidecar_name(_name(rel))
                and not is_product_metadata(rel)
                and (_name(rel) != USER_METADATA_NAME)
            ):
                found.ignored.append(rel)
    found.notes += [_auxiliary_note(family, files) for family, files in sorted(auxiliary.items())]
    found.candidates.sort(key=lambda c: c.relpath)
    found.ignored.sort()


# What the auxiliary files of each product family are (`scenes.auxiliary_of`), for the note.
AUXILIARY_KINDS = {
    "Landsat Collection 2": "browse image, angle coefficient and JSON metadata",
    "Sentinel-2 SAFE": "preview, quality mask and report, HTML and auxiliary data",
}


def _without_auxiliary(
    entries: list[tuple[str, str]], auxiliary: dict[str, list[tuple[str, str]]], found: Discovery
) -> list[tuple[str, str]]:
    """A folder's entries less the auxiliary files of a recognised product
    (`scenes.auxiliary_of`: browse images, previews, quality masks, HTML, ...), which are
    listed as ignored (and in `auxiliary`, by product family, for the run's note): never an
    item, a rejection nor a sidecar, so they count in no fingerprint."""
    kept = []
    for path, rel in entries:
        aux = auxiliary_of(rel) if _name(rel) != USER_METADATA_NAME else None
        if aux is None:
            kept.append((path, rel))
        else:
            found.ignored.append(rel)
            auxiliary.setdefault(aux.family, []).append((aux.product, rel))
    return kept


def _auxiliary_note(family: str, files: list[tuple[str, str]]) -> str:
    """One note per product family for the run: how many files of which products are
    ignored and what they are, with an example (the report's `ignored` lists them all)."""
    products = sorted({product for product, _ in files})
    # The example: a raster by name first (what would have been rejected or an item).
    rels = sorted(rel for _, rel in files)
    example = next((r for r in rels if _lower_ext(r) in KNOWN_RASTER_EXTENSIONS), rels[0])
    which = (f"the {family} product {products[0]}" if len(products) == 1
             else f"{len(products)} {family} products")  # fmt: skip
    kinds = AUXILIARY_KINDS.get(family, "auxiliary")
    return (f"{len(files)} file(s) of {which} ignored: {kinds} files, no band of a scene "
            f"(e.g. {example}; all in the report's ignored list)")  # fmt: skip


# A raster named `<stem>_<suffix>` beside `<stem>.<ext>` is that raster's cloud mask.
CLOUD_MASK_SUFFIXES = ("_cloudmask", "_scl", "_qa_pixel", "_fmask")


def _cloud_masks(rasters: list[tuple[str, str]]) -> dict[str, str]:
    """{raster relpath: its cloud-mask raster relpath} within one folder."""
    by_stem = {os.path.splitext(_name(r))[0].lower(): r for _, r in rasters}
    out = {}
    for _, rel in rasters:
        stem = os.path.splitext(_name(rel))[0].lower()
        for suffix in CLOUD_MASK_SUFFIXES:
            if stem.endswith(suffix) and stem[: -len(suffix)] in by_stem:
                out[by_stem[stem[: -len(suffix)]]] = rel
    return out


def _metadata_for(
    rel: str, folder: str, metadata_by_dir: dict[str, list[tuple[str, str]]]
) -> list[str]:
    """Product metadata in the raster's folder or its ancestors, nearest first. A Landsat
    MTL belongs to the rasters whose names start with its product id."""
    out = []
    current = folder
    while True:
        for path, meta_rel in metadata_by_dir.get(current, []):
            name = _name(meta_rel)
            if "_MTL." in name.upper():
                product = name[: name.upper().index("_MTL.")]
                if not _name(rel).upper().startswith(product.upper()):
                    continue
            out.append(path)
        if not current:
            return out
        current = posixpath.dirname(current)


def _name(relpath: str) -> str:
    return posixpath.basename(relpath)


def _stem(relpath: str) -> str:
    return os.path.splitext(_name(relpath))[0]


def _walk(
    root: Path,
    folder: Path,
    seen: set[tuple[int, int]],
    files: list[tuple[str, str]],
    found: Discovery,
    outputs: frozenset[tuple[int, int]] = frozenset(),
) -> None:
    st = folder.stat()
    if (st.st_dev, st.st_ino) in outputs:
        found.notes.append(f"{_rel(root, folder)}: byod's own output (target or catalog) "
                           "inside the source; not read as input")  # fmt: skip
        return
    if (st.st_dev, st.st_ino) in seen:
        found.problems.append(
            DiscoveryProblem(
                _rel(root, folder),
                Reason.SYMLINK_LOOP,
                f"{_rel(root, folder)}: directory link leads back into a folder already walked; "
                "not followed",
            )
        )
        return
    seen.add((st.st_dev, st.st_ino))
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        found.problems.append(
            DiscoveryProblem(_rel(root, folder), Reason.UNREADABLE,
                             f"{_rel(root, folder)}: cannot list folder ({exc.strerror})")
        )  # fmt: skip
        return
    # Each entry's path relative to the root, built from its folder's: `_rel` per entry
    # was a tenth of a no-op over 1,000 inputs (os.path.relpath makes both paths absolute).
    prefix = "" if folder == root else _rel(root, folder) + "/"
    if _is_byod_output(folder, {e.name for e in entries}):
        if not prefix:  # the source itself: its COGs and thumbnails are no new inputs
            raise ConfigurationError(
                f"{root}: a folder byod wrote (COGs or a catalog of "
                "an earlier run): give the folder of your rasters"
            )
        found.outputs.append(prefix[:-1])
        found.notes.append(f"{prefix[:-1]}: byod's output (COGs or a catalog of an earlier run) "
                           "inside the source; not read as input")  # fmt: skip
        return
    for entry in entries:
        if prefix and entry.name in CONFIG_NAMES:  # read only at the top (dataset_config)
            found.ignored.append(prefix + entry.name)
            found.notes.append(f"{prefix}{entry.name}: not read (byod reads the {entry.name} "
                               "at the top of the source, or the file --config names)")  # fmt: skip
            continue
        if entry.name in IGNORED_NAMES or entry.name.startswith("."):
            continue
        path = Path(entry.path)
        rel = prefix + entry.name
        if not _is_utf8(rel):
            _bad_name(entry, rel, found)
            continue
        if entry.is_symlink() and not _resolves_inside(path, root):
            found.ignored.append(rel)
            found.notes.append(f"{rel}: ignored: a symbolic link leading outside the source "
                               "folder; not followed")  # fmt: skip
            continue
        try:
            mode = entry.stat().st_mode  # follows links
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                found.problems.append(
                    DiscoveryProblem(rel, Reason.SYMLINK_LOOP, f"{rel}: symbolic link loop")
                )
            else:
                reason = f"broken link or unreadable entry ({exc.strerror})"
                found.problems.append(DiscoveryProblem(rel, Reason.UNREADABLE, f"{rel}: {reason}"))
            continue
        if stat.S_ISDIR(mode):
            if is_raster_name(entry.name):
                found.problems.append(
                    DiscoveryProblem(
                        rel, Reason.NOT_A_FILE,
                        f"{rel}: is a directory named like a raster; its contents are walked",
                    )
                )  # fmt: skip
            _walk(root, path, seen, files, found, outputs)
        elif stat.S_ISREG(mode):
            files.append((entry.path, rel))
        elif is_raster_name(entry.name):
            found.problems.append(
                DiscoveryProblem(rel, Reason.NOT_A_FILE, f"{rel}: not a regular file")
            )


def _is_byod_output(folder: Path, names: set[str]) -> bool:
    """Whether `folder` (with the entries `names`) is a folder byod wrote: its marker
    (`keys.OUTPUT_MARKER`, written since this rule), or a root catalog of byod's
    (`catalog.json` with byod's root id, for catalogs written before)."""
    if OUTPUT_MARKER in names:
        return True
    if ROOT_KEY not in names:
        return False
    try:
        with open(folder / ROOT_KEY, "rb") as f:
            head = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and head.get("type") == "Catalog" and head.get("id") == ROOT_ID


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir turned undecodable bytes into surrogates
        return False
    return True


def safe_name(text: str) -> str:
    """A file name or path as text that can be printed and written to JSON: bytes that are
    not UTF-8 shown as `\\xe9` escapes (the name's surrogates turned back to bytes)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _bad_name(entry: os.DirEntry[str], rel: str, found: Discovery) -> None:
    """GDAL (through rasterio) cannot open a path that is not UTF-8: a folder or a raster so
    named is a rejection naming the escaped name; any other file is ignored."""
    shown = safe_name(rel)
    try:
        is_dir = entry.is_dir()
    except OSError:
        is_dir = False
    if is_dir or is_raster_name(entry.name):
        what = "folder" if is_dir else "file"
        found.problems.append(DiscoveryProblem(
            shown, Reason.BAD_NAME,
            f"{shown}: the {what} name is not valid UTF-8 (bytes shown escaped); rename it",
        ))  # fmt: skip
    else:
        found.ignored.append(shown)


def _resolves_inside(path: Path, root: Path) -> bool:
    try:
        target = path.resolve()
    except (OSError, RuntimeError):
        return True  # a loop: reported as symlink_loop by the walk, inside or not
    return target == root or target.is_relative_to(root)


def _rel(root: Path, path: Path) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else Path(rel).as_posix()


def _gdal_sidecar_name(name: str) -> bool:
    """A name only GDAL's sidecars have (`.aux.xml`, `.ovr`, world files, `.prj`, ...),
    unlike `.txt`, `.xml` and `.json`, which are sidecars only beside their raster."""
    lower = name.lower()
    return is_sidecar_name(name) and (
        lower.endswith(SIDECAR_SUFFIXES) or _lower_ext(name) not in {".txt", ".xml", ".json"}
    )


def sidecar_names(raster_name: str, ehdr: bool = False) -> list[str]:
    """The names (lower case) a sidecar of `raster_name` may have: its whole name plus one
    of NAME_SIDECAR_ENDINGS, or its stem plus one of STEM_SIDECAR_ENDINGS or one of the
    world file extensions GDAL derives from its extension (`x.tfw` is `x.tif`'s, not
    `x.img`'s). An EHdr data file (`.bil`, `.bip`, `.bsq`, `.flt`, or `ehdr`: one with a
    `.hdr` by its stem) also has `x.clr` and `x.stx`. Product metadata (MTL, MTD) is paired
    by product, not by name (`_metadata_for`)."""
    name = raster_name.lower()
    stem, extension = os.path.splitext(name)
    names = [name + end for end in NAME_SIDECAR_ENDINGS]
    names += [stem + end for end in (*world_file_extensions(extension), *STEM_SIDECAR_ENDINGS)]
    if ehdr or extension in EHDR_EXTENSIONS:
        names += [stem + end for end in EHDR_SIDECAR_ENDINGS]
    return [n for n in dict.fromkeys(names) if n != name]


def _sidecars_of(
    raster: str, by_name: dict[str, tuple[str, str]], ehdr: bool = False
) -> list[tuple[str, str]]:
    """The (path, relpath) of the raster's sidecars among a folder's other files, which
    `by_name` holds by lower-case name."""
    found = (by_name.get(n) for n in sidecar_names(_name(raster), ehdr))
    return sorted(f for f in found if f is not None and f[1] != raster)


@dataclass(frozen=True)
class UserTable:
    """A folder's byod-metadata.csv as byod reads it (`read_user_metadata`)."""

    columns: tuple[str, ...]  # the header's names as written (stripped)
    # (the row's first line in the file, its cells by lower-case column name, stripped)
    rows: tuple[tuple[int, dict[str, str]], ...]
    delimiter: str
    encoding: str  # "utf-8", "utf-16" (with its BOM), or the fallback "cp1252"
    problem: str | None = None  # why the table is not used at all (no `file` column)

    def rows_for(self, relpath: str) -> list[tuple[int, dict[str, str]]]:
        """The rows naming the input `relpath`: its file name, with or without the
        extension, or its scene's name (the `file` cell, compared as written)."""
        name = relpath.rsplit("/", 1)[-1]
        wanted = {name, os.path.splitext(name)[0]}
        return [(line, row) for line, row in self.rows if row.get("file") in wanted]

    def notes(self, label: str) -> list[str]:
        """What the run notes say of the table as a whole: that it is not used and why, a
        fallback encoding, the columns byod does not read."""
        if self.problem is not None:
            return [f"{label}: {self.problem}; the table is not used"]
        notes = []
        if self.encoding == "cp1252":
            notes.append(f"{label}: not UTF-8; read as Windows-1252 ({self.encoding}), "
                         "as spreadsheet programs write it (CSV UTF-8 is sure)")  # fmt: skip
        unknown = [c for c in self.columns if c.lower() not in USER_METADATA_COLUMNS]
        if unknown:
            known = ", ".join(USER_METADATA_COLUMNS)
            shown = ", ".join(repr(c) for c in unknown)
            notes.append(f"{label}: column {shown} is not one byod reads ({known}); "
                         "its values are ignored")  # fmt: skip
        return notes


# Delimiters a byod-metadata.csv may use: `,`, and `;` or a tab as spreadsheet programs
# write CSV where the decimal separator is a comma (Excel in German or French).
USER_METADATA_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


def read_user_metadata(path: Path) -> UserTable:
    """Read a byod-metadata.csv as spreadsheet programs write it: UTF-8 (with or without a
    BOM), UTF-16 with its BOM (Excel's "Unicode text"), else Windows-1252 (Excel's "CSV"
    in Western locales); the delimiter the header line uses most among `,`, `;` and tab;
    column names without regard to case. A row's
    line is the line it starts on (a quoted cell may hold a newline). A table without a
    `file` column has `problem` set.

    Raises OSError or csv.Error (a NUL byte, ...) for a file that cannot be read."""
    raw = path.read_bytes()
    try:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # "Unicode text"
            text, encoding = raw.decode("utf-16"), "utf-16"
        else:
            text, encoding = raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("cp1252", errors="replace"), "cp1252"
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(USER_METADATA_DELIMITERS, key=header_line.count)  # ties: the first, `,`
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows = []
    while True:
        first_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if header is None:
            header = [c.strip() for c in cells]
            continue
        rows.append((first_line, {k.lower(): v.strip() for k, v in zip(header, cells, strict=False)
                                  if k}))  # fmt: skip
    columns = tuple(header or ())
    problem = None
    if "file" not in (c.lower() for c in columns):
        shown = ", ".join(repr(c) for c in columns) or "none"
        problem = (f"no 'file' column naming each row's input (its columns: {shown}; "
                   f"cells read as separated by {_DELIMITER_NAMES[delimiter]})")  # fmt: skip
    return UserTable(columns, tuple(rows), delimiter, encoding, problem)


def _user_metadata_version(path: Path, relpath: str) -> str:
    """What of the byod-metadata.csv applies to one input: the columns byod reads and its
    rows' cells in them (not their lines, not other columns), so editing another file's row
    or a comment column leaves this input unchanged. A table that cannot be read counts as
    a whole (its reading fails the same way in the worker)."""
    try:
        table = read_user_metadata(path)
    except (OSError, csv.Error):
        return file_sha256(path)
    read = sorted(c.lower() for c in table.columns if c.lower() in USER_METADATA_COLUMNS)
    cells = [{c: row.get(c, "") for c in read} for _, row in table.rows_for(relpath)]
    text = json.dumps([table.problem is None, read, cells], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def user_metadata_notes(found: Discovery) -> None:
    """Run notes on each local byod-metadata.csv the candidates use, once per run: the
    table's own (`UserTable.notes`), or that it cannot be read, and its rows that name no
    file of its folder (a scene's name counts: a prefix of its band files' names)."""
    for path in sorted({c.user_metadata for c in found.candidates if c.user_metadata}):
        folder = Path(path).parent
        relpath = next(c.relpath for c in found.candidates if c.user_metadata == path)
        label = posixpath.join(posixpath.dirname(relpath), USER_METADATA_NAME)
        try:
            table = read_user_metadata(Path(path))
        except (OSError, csv.Error) as exc:
            found.notes.append(f"{label}: unreadable ({exc}); the table is not used")
            continue
        found.notes += table.notes(label)
        if table.problem is not None:
            continue
        try:
            names = [e.name for e in os.scandir(folder) if e.name != USER_METADATA_NAME]
        except OSError:
            continue
        known = {n for name in names for n in (name, os.path.splitext(name)[0])}
        for line, row in table.rows:
            cell = row.get("file", "")
            if cell and cell not in known and not any(n.startswith(cell) for n in names):
                found.notes.append(f"{label} row {line}: {cell!r} is no file of its folder; "
                                   "the row is not used")  # fmt: skip


def fingerprint(candidate: Candidate, recipe: str) -> str:
    """sha256 over the raster, its sidecars and the options that shape the output.

    Sidecars are included because a changed world file or .prj changes the georeferencing;
    of the folder's byod-metadata.csv only the input's own rows (and the columns) count.
    Local files are hashed; remote ones are taken by the version their listing gives (the
    whole csv's, for want of its bytes: an edited row re-ingests the folder there).
    """
    digest = hashlib.sha256()
    digest.update(recipe.encode())
    paths = (candidate.path, *candidate.sidecars)  # sidecars include metadata and masks
    versions = candidate.versions or tuple(
        _user_metadata_version(Path(p), candidate.relpath)
        if p == candidate.user_metadata
        else file_sha256(Path(p))
        for p in paths
    )
    for path, version in zip(paths, versions, strict=True):
        digest.update(b"\0" + _name(path).encode() + b"\0" + version.encode())
    return digest.hexdigest()


# How long before its stat is taken a file must have last changed (mtime and ctime) for the
# stat to be trusted next time (`stat_signature`): a write after the stat within the same
# timestamp tick would leave size, mtime and ctime as they were ("racy git",
# Documentation/technical/racy-git.txt). 2 s covers the coarsest common timestamps (FAT's
# 2 s mtime) and a little clock difference to a file server; the kernel's coarse clock
# (a few ms) is well inside it.
RACY_NS = 2_000_000_000

# What the stat signature keeps of each file, as git's index does (ce_match_stat): size,
# mtime and ctime in ns, inode and mode. ctime cannot be set back by `touch -r`/`os.utime`
# (it moves to now when they run), so an edit whose mtime is restored still shows. The
# device number is left out, as git does by default: it changes across remounts of NFS.
FileStat = tuple[int, int, int, int, int]


def file_stats(candidate: Candidate) -> tuple[FileStat, ...]:
    """The stat of each file `fingerprint` covers (raster, then sidecars), links followed.
    Raises OSError when one is gone or cannot be stat'ed."""
    out = []
    for path in (candidate.path, *candidate.sidecars):
        info = os.stat(path)
        out.append((info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
                    info.st_mode))  # fmt: skip
    return tuple(out)


def stat_signature(candidate: Candidate, recipe: str, stats: tuple[FileStat, ...]) -> str:
    """32 hex digits over the options and each file's name and stat (`file_stats`): what an
    item records (`byod:stat`) so that the next run takes the input as unchanged without
    reading it when nothing of that changed (planning). Only for local inputs."""
    digest = hashlib.sha256(recipe.encode())
    for path, info in zip((candidate.path, *candidate.sidecars), stats, strict=True):
        digest.update(b"\0" + _name(path).encode() + b"\0" + ",".join(map(str, info)).encode())
    return digest.hexdigest()[:32]


def settled(stats: tuple[FileStat, ...], taken_ns: int) -> bool:
    """Whether every file last changed (mtime and ctime) RACY_NS or more before `taken_ns`
    (`time.time_ns()` just before the stat): only then does any later write show in the stat,
    and may the signature be recorded."""
    return all(max(s[1], s[2]) < taken_ns - RACY_NS for s in stats)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of a local file, read `HASH_CHUNK` bytes at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def slugify(text: str) -> str:
    """A lower-case, URL- and blob-safe slug: accents folded, anything else becomes '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("-", ascii_text.lower()).strip("-._")
    return re.sub(r"-{2,}", "-", slug) or "item"


# Longest item id: ids name folders and files (`<id>-thumbnail.png`, temp `.partial` names);
# a 255-byte file name (the usual filesystem limit) must still fit in all of them.
MAX_ID_LENGTH = 120


def item_id_for(relpath: str) -> str:
    """The preferred item id of an input: a slug of its path without the extension; a slug
    longer than MAX_ID_LENGTH is cut and given a short hash of the whole path."""
    slug = slugify(os.path.splitext(relpath)[0].replace("/", "-"))
    if len(slug) <= MAX_ID_LENGTH:
        return slug
    return f"{slug[: MAX_ID_LENGTH - 9].rstrip('-._')}-{path_hash(relpath)}"


def disambiguated_id(relpath: str, root: str | None = None) -> str:
    """The id used when the preferred one is taken by another input: a hash of the path
    added (of the source root and the path, `root`, when that one is taken too: the same
    path in another source of the collection)."""
    return f"{item_id_for(relpath)}-{path_hash(relpath if root is None else f'{root}/{relpath}')}"


def source_root(url: str) -> str:
    """The source as items record it (`byod:source_root`): a blob URL as given without its
    trailing `/`, a local folder as its absolute path with links resolved. Two runs over the
    same source give the same string; --prune touches only the items of its own source."""
    if "://" in url:
        return url.rstrip("/")
    return str(Path(url).resolve())


def path_hash(relpath: str) -> str:
    """8 hex digits of the SHA-256 of a path: what tells apart ids cut or taken by another."""
    return hashlib.sha256(relpath.encode()).hexdigest()[:8]
