"""byod: bring your own rasters; get Cloud Optimized GeoTIFFs and a static STAC catalog."""

__version__ = "0.1.0"
