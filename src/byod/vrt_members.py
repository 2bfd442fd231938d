"""The files a GDAL VRT in the source reads: its members, ingested as part of it.

A VRT built beside its sources (`gdalbuildvrt -separate stack.vrt b1.tif b2.tif`) is one
raster made of those files. Ingesting the sources as items of their own as well would store
the same pixels twice (three times with two bands), and the VRT's fingerprint would miss an
edit of a source (the VRT's bytes do not change). Discovery (`sources.discover`) therefore
makes the members of a local VRT its sidecars: fingerprinted with it, never items alone.

Only the names GDAL's VRT format gives sources (gdal_vrttut: `SourceFilename`, and the
`*Filename` elements of masks and overviews) are read; what the worker's guard refuses
(names outside the source, /vsi paths, entities: `untrusted.guard_inputs`) is left to it.
"""

from __future__ import annotations

import os
from pathlib import Path

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

# A VRT is read here only if it is small enough to be XML a person or gdalbuildvrt wrote.
MAX_VRT_BYTES = 16 * 1024 * 1024


def vrt_members(path: Path) -> list[Path]:
    """The local files a VRT at `path` names as sources, resolved (relative names against
    the VRT's folder when `relativeToVRT="1"`, as GDAL reads them), in document order and
    once each; [] for a file that is no VRT XML, too large, or unparseable (the worker
    rejects those with the reason). Names GDAL opens through a driver prefix or a virtual
    file system (`NETCDF:...`, `/vsizip/...`) and inline VRTs are not files here."""
    try:
        if path.stat().st_size > MAX_VRT_BYTES:
            return []
        top = ElementTree.parse(str(path)).getroot()
    except (OSError, DefusedXmlException, ElementTree.ParseError):
        return []
    if top is None or top.tag != "VRTDataset":
        return []
    members: dict[Path, None] = {}
    for element in top.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        name = (element.text or "").strip()
        if not tag.endswith("Filename") or not name or _not_a_file(name):
            continue
        relative = element.get("relativeToVRT") == "1" or element.get("relativetoVRT") == "1"
        target = path.parent / name if relative and not os.path.isabs(name) else Path(name)
        if target.is_absolute():
            members[Path(os.path.realpath(target))] = None
    return list(members)


def _not_a_file(name: str) -> bool:
    # `/vsi...` virtual files, `DRIVER:...` subdataset names, inline `<VRTDataset ...>`.
    if name.startswith(("<", "/vsi")):
        return True
    head = name.split(":", 1)[0]
    return ":" in name and len(head) > 1 and head.replace("_", "").isalnum() and head.isupper()
