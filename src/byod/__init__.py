"""byod: bring your own rasters; get Cloud Optimized GeoTIFFs and a static STAC catalog.

The notebook API (`byod.search`, `byod.open_catalog`, `byod.load`, `byod.sign`,
`byod.SignedStacIO`) is imported on first use: the worker processes that convert rasters
import `byod.*` modules too, and should not pay for pyarrow and the Azure SDK (~100 MB each).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "search": "byod.analysis",
    "open_catalog": "byod.analysis",
    "load": "byod.analysis",
    "sign": "byod.signing",
    "SignedStacIO": "byod.signing",
}
__all__ = ["SignedStacIO", "__version__", "load", "open_catalog", "search", "sign"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'byod' has no attribute {name!r}")
