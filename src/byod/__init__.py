"""byod: bring your own rasters; get Cloud Optimized GeoTIFFs and a static STAC catalog."""

from byod.analysis import load, open_catalog, search
from byod.signing import SignedStacIO, sign

__version__ = "0.1.0"
__all__ = ["SignedStacIO", "__version__", "load", "open_catalog", "search", "sign"]
