"""How long a file's own header says it is: the rule for files GDAL reads zeros past the end of.

A NetCDF classic file (CDF-1, 64-bit offset CDF-2, CDF-5) cut short opens, and GDAL's netCDF
driver (netCDF-C underneath) returns zeros for the missing bytes without an error; ENVI raw
files do the same (GDAL zero-fills short reads of ENVI files, which may be sparse). Their
headers say where every byte lies, so a file shorter than that is truncated.

The NetCDF classic header is parsed as Unidata's "NetCDF File Format Specification" lays it
out (netCDF-C keeps no API for a variable's offset, and no installed library reads it).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The first bytes of the formats a GDAL driver identifies by signature: a file starting with
# one that GDAL cannot open is damaged or cut, not "not a raster".
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", "HDF5/NetCDF-4"),
    (b"CDF\x01", "NetCDF classic"),
    (b"CDF\x02", "NetCDF 64-bit offset"),
    (b"CDF\x05", "NetCDF CDF-5"),
    (b"\x0e\x03\x13\x01", "HDF4"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"EHFA_HEADER_TAG", "ERDAS Imagine"),
    (b"GRIB", "GRIB"),
)

CLASSIC_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_STREAMING = 0xFFFFFFFF  # numrecs of a file still being written: the records are not counted
_ABSENT, _DIMENSION, _VARIABLE, _ATTRIBUTE = 0, 0x0A, 0x0B, 0x0C
# nc_type -> bytes per value (CDF-5 adds 7..11).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}


class HeaderError(ValueError):
    """The header itself is cut or malformed."""


def signature(path: Path) -> str | None:
    """The format a file's first bytes name (SIGNATURES), or None."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    return next((name for magic, name in SIGNATURES if head.startswith(magic)), None)


@dataclass(frozen=True)
class _Var:
    shape: tuple[int, ...]  # dimension lengths, the record dimension as 0
    record: bool
    item: int  # bytes per value
    begin: int


def classic_length(path: Path) -> int | None:
    """The bytes a NetCDF classic/64-bit-offset/CDF-5 file needs for all its variables'
    data, from its header; None when the file is no such file (another magic).

    Non-record variables end at begin + product(shape) x item size; record variables at
    begin + (numrecs - 1) x recsize + their size per record. Padding after the last value is
    not required. A streaming file (numrecs 0xFFFFFFFF) is checked for its fixed part only.
    Raises HeaderError when the header is cut or malformed (the file is damaged).
    """
    with path.open("rb") as handle:
        magic = handle.read(4)
        if magic not in CLASSIC_MAGIC:
            return None
        reader = _Reader(handle, wide=magic == b"CDF\x05", offset64=magic != b"CDF\x01")
        return _classic_length(reader)


def _classic_length(r: _Reader) -> int:
    numrecs = r.count()
    dims = [(name, length) for name, length in _dim_list(r)]
    _skip_attributes(r)
    variables = _var_list(r, dims)
    records = [v for v in variables if v.record]
    sizes = [math.prod(s for s in v.shape if s) * v.item for v in records]
    # The spec's one exception: a lone record variable's records are not padded to 4 bytes.
    recsize = sizes[0] if len(records) == 1 else sum(_pad4(s) for s in sizes)
    end = 0
    for v in variables:
        if not v.record:
            end = max(end, v.begin + math.prod(v.shape) * v.item)
    if numrecs != _STREAMING and numrecs > 0:
        for v, size in zip(records, sizes, strict=True):
            end = max(end, v.begin + (numrecs - 1) * recsize + size)
    return end


class _Reader:
    def __init__(self, handle: BinaryIO, *, wide: bool, offset64: bool) -> None:
        self.handle, self.wide, self.offset64 = handle, wide, offset64

    def _take(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise HeaderError("header cut short")
        return data

    def int32(self) -> int:
        return int(struct.unpack(">I", self._take(4))[0])

    def count(self) -> int:
        """NON_NEG: 32 bits, 64 in CDF-5."""
        return int(struct.unpack(">Q", self._take(8))[0]) if self.wide else self.int32()

    def offset(self) -> int:
        return int(struct.unpack(">Q", self._take(8))[0]) if self.offset64 else self.int32()

    def name(self) -> str:
        size = self.count()
        if size > 1 << 20:
            raise HeaderError(f"name of {size} bytes")
        return self._take(_pad4(size))[:size].decode("utf-8", errors="replace")

    def skip(self, size: int) -> None:
        self._take(size)


def _pad4(size: int) -> int:
    return (size + 3) // 4 * 4


def _list_header(r: _Reader, tag: int) -> int:
    """The element count of a list tagged `tag`, 0 when ABSENT."""
    found, count = r.int32(), r.count()
    if found == _ABSENT and count == 0:
        return 0
    if found != tag:
        raise HeaderError(f"expected list tag {tag:#x}, found {found:#x}")
    return count


def _dim_list(r: _Reader) -> list[tuple[str, int]]:
    return [(r.name(), r.count()) for _ in range(_list_header(r, _DIMENSION))]


def _skip_attributes(r: _Reader) -> None:
    for _ in range(_list_header(r, _ATTRIBUTE)):
        r.name()
        kind = r.int32()
        if kind not in _TYPE_SIZES:
            raise HeaderError(f"unknown attribute type {kind}")
        r.skip(_pad4(r.count() * _TYPE_SIZES[kind]))


def _var_list(r: _Reader, dims: list[tuple[str, int]]) -> list[_Var]:
    out = []
    for _ in range(_list_header(r, _VARIABLE)):
        r.name()
        ids = [r.count() for _ in range(r.count())]
        if any(i >= len(dims) for i in ids):
            raise HeaderError("variable names a dimension that does not exist")
        _skip_attributes(r)
        kind = r.int32()
        if kind not in _TYPE_SIZES:
            raise HeaderError(f"unknown variable type {kind}")
        r.count()  # vsize: wraps for variables over 4 GiB in CDF-1/2, so the shape is used
        begin = r.offset()
        shape = tuple(dims[i][1] for i in ids)
        out.append(_Var(shape, bool(shape) and shape[0] == 0, _TYPE_SIZES[kind], begin))
    return out


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def hdf5_length(path: Path) -> int | None:
    """The end-of-file address an HDF5 (NetCDF-4) superblock at the start of the file
    declares, plus its base address: the length the file must have (HDF5 File Format
    Specification, superblock versions 0-3). None when the file does not start with the
    HDF5 signature. Raises HeaderError when the superblock is cut or of an unknown version."""
    with path.open("rb") as handle:
        head = handle.read(128)
    if not head.startswith(HDF5_MAGIC):
        return None
    if len(head) < 16:
        raise HeaderError("superblock cut short")
    version = head[8]
    if version in (0, 1):
        size = head[13]
        start = 24 + (4 if version == 1 else 0)
    elif version in (2, 3):
        size = head[9]
        start = 12
    else:
        raise HeaderError(f"unknown superblock version {version}")
    if size not in (2, 4, 8, 16):
        raise HeaderError(f"offsets of {size} bytes")
    # v0/1: base, free-space, end-of-file; v2/3: base, extension, end-of-file.
    fields = head[start : start + 3 * size]
    if len(fields) < 3 * size:
        raise HeaderError("superblock cut short")
    base = int.from_bytes(fields[:size], "little")
    eof = int.from_bytes(fields[2 * size :], "little")
    return base + eof


def envi_length(tags: dict[str, str], width: int, height: int, bands: int, item: int) -> int:
    """The bytes an ENVI raw file needs: `header offset` + every pixel of every band (GDAL's
    ENVI metadata domain gives the header's keys)."""
    try:
        offset = int(tags.get("header_offset", "0").strip() or 0)
    except ValueError:
        offset = 0
    return offset + width * height * bands * item
