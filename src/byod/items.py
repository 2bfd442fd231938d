"""Build the STAC Item of one scene from plain records. No I/O.

Items declare the projection extension v1.2.0, the last version that allows `proj:epsg`
beside `proj:code` (v2.0.0 forbids any other `proj:` field): clients that read only
`proj:epsg` (stackstac 0.5, older odc-stac) then work from the JSON. pystac 1.15 migrates
such items to v2.0.0 on reading and drops `proj:epsg` (stackstac issue 262), so byod reads
its own items with `migrate=False`.
"""

from __future__ import annotations

import math

import pystac
from pyproj import CRS, Geod
from pyproj.exceptions import CRSError
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension

from byod.clouds import CloudEstimate
from byod.records import AssetFile, BandInfo, RasterInfo, Scene, SceneAsset, resolution_of
from byod.scenes import MASK_BANDS, known_bands

COG_MEDIA_TYPE = pystac.MediaType.COG  # image/tiff; application=geotiff; profile=cloud-optimized
THUMBNAIL_ASSET = "thumbnail"

# GDAL colour interpretations that are eo common band names.
_COMMON_NAMES = {"red": "red", "green": "green", "blue": "blue"}
_UNITLESS = {"", "unknown"}
# The projection extension version items declare (see the module docstring).
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"
# rasterio's names of complex types -> the raster extension's data_type values. rasterio
# has no name for GDAL's CInt32 and reads it as complex64, which rio-cogeo then writes.
_RASTER_DATA_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64",
                      "complex_int16": "cint16", "complex_int32": "cint32"}  # fmt: skip


def multihash_sha256(hex_digest: str) -> str:
    """The file extension's checksum: multihash code 0x12 (sha2-256), length 0x20, digest."""
    return "1220" + hex_digest


def primary_asset(assets: tuple[SceneAsset, ...]) -> SceneAsset:
    """The asset the item's projection describes: the finest band that is not a mask."""
    data = [a for a in assets if a.key.upper() not in MASK_BANDS] or list(assets)
    return min(data, key=lambda a: (a.resolution or (0.0, 0.0))[0])


def build_item(scene: Scene, *, source: str, fingerprint: str, stat: str | None = None
               ) -> pystac.Item:  # fmt: skip
    """The STAC Item (STAC 1.1.0) of a stored scene (every file's `href` set: assets are
    stored first).

    `geometry` and `bbox` are the scene's footprint in EPSG:4326 lon/lat degrees, split at
    180° (STAC, RFC 7946 section 3.1.9); the item's `proj:*` fields (projection extension
    v1.2.0) describe the primary asset's grid in the raster's own CRS, an asset on another
    grid carries its own `proj:shape`/`proj:transform`. Each data asset has `raster:bands`
    (raster extension v1.1.0: nodata, data_type, scale/offset, unit, `spatial_resolution` in
    metres), `eo:bands` for known products' bands or RGB colour interpretation (eo v1.1.0),
    and `file:size` (bytes) / `file:checksum` (sha2-256 multihash; file v2.1.0).
    `eo:cloud_cover` (percent) is set only when a cloud source gave one (absent is not 0).

    `source` is the input's path relative to the source folder (`byod:source`), and
    `fingerprint` what the input's files and the output-shaping options hash to
    (sources.fingerprint; `byod:fingerprint`); `stat` the signature of the stat of those
    files when it may be trusted by the next run (sources.stat_signature; `byod:stat`,
    absent when None). Raises ValueError for a file not stored.
    """
    item = pystac.Item(
        id=scene.item_id,
        geometry=scene.footprint.geometry,
        bbox=scene.footprint.bbox,
        # A time-less input: datetime null with the period [UNKNOWN_START, first ingest].
        datetime=scene.acquisition.datetime,
        start_datetime=scene.acquisition.start,
        end_datetime=scene.acquisition.end,
        properties={
            "byod:source": source,
            "byod:fingerprint": fingerprint,
            "byod:datetime_source": scene.acquisition.source,
            "byod:cog_passthrough": all(a.passthrough for a in scene.assets),
        },
    )
    _add_clouds(item, scene.clouds.chosen)
    primary = primary_asset(scene.assets)
    _add_projection(ProjectionExtension.ext(item, add_if_missing=True), primary.raster)
    _declare_projection_v1_2(item)
    for part in scene.assets:
        asset = pystac.Asset(
            href=_href(part.file),
            media_type=COG_MEDIA_TYPE,
            roles=["data", "cloud"] if part.key.upper() in MASK_BANDS else ["data"],
            title=f"{part.source_name} (Cloud Optimized GeoTIFF)",
        )
        item.add_asset(part.key, asset)
        if part.raster.transform != primary.raster.transform:
            _add_projection(ProjectionExtension.ext(asset), part.raster, with_crs=False)
        metres = ground_resolution(part.raster)
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            _raster_band(b, metres) for b in part.raster.bands
        ]
        eo_bands = _eo_bands(part.raster.bands, part.key, scene.product)
        if eo_bands is not None:
            EOExtension.ext(asset, add_if_missing=True).bands = eo_bands
        _add_file(asset, part.file)
    thumbnail = pystac.Asset(
        href=_href(scene.thumbnail), media_type=pystac.MediaType.PNG, roles=["thumbnail"],
        title="Thumbnail",
    )  # fmt: skip
    item.add_asset(THUMBNAIL_ASSET, thumbnail)
    _add_file(thumbnail, scene.thumbnail)
    if scene.subdataset is not None:
        item.properties["byod:subdataset"] = scene.subdataset
    if stat is not None:
        item.properties["byod:stat"] = stat
    return item


def _href(file: AssetFile) -> str:
    if file.href is None:
        raise ValueError(f"{file.path.name} is not stored: an item points at stored files only")
    return file.href


def _add_file(asset: pystac.Asset, file: AssetFile) -> None:
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.size = file.size
    file_ext.checksum = multihash_sha256(file.sha256)


def _add_clouds(item: pystac.Item, clouds: CloudEstimate | None) -> None:
    """eo:cloud_cover only when a source gave one: absent is not 0."""
    if clouds is None:
        return
    eo = EOExtension.ext(item, add_if_missing=True)
    eo.cloud_cover = clouds.cloud_cover
    if clouds.snow_cover is not None:
        eo.snow_cover = clouds.snow_cover
    if clouds.shadow_cover is not None:
        item.properties["byod:cloud_shadow_cover"] = clouds.shadow_cover
    item.properties["byod:cloud_cover_source"] = clouds.source


def _declare_projection_v1_2(item: pystac.Item) -> None:
    """Declare projection v1.2.0 instead of pystac's v2.0.0 (same fields, plus proj:epsg)."""
    item.stac_extensions = [
        PROJECTION_SCHEMA if uri == ProjectionExtension.get_schema_uri() else uri
        for uri in item.stac_extensions
    ]


def epsg_number(code: str | None) -> int | None:
    """The integer of an `EPSG:nnnn` code, for `proj:epsg`; None for other authorities."""
    if code is None or not code.upper().startswith("EPSG:"):
        return None
    number = code.split(":", 1)[1]
    return int(number) if number.isdigit() else None


def _add_projection(
    proj: ProjectionExtension[pystac.Item] | ProjectionExtension[pystac.Asset],
    info: RasterInfo,
    *,
    with_crs: bool = True,
) -> None:
    """proj: fields of an item (`with_crs`) or of an asset on another grid than the item's.

    A raster placed by GCPs or RPCs only is unrectified: its pixel grid has no CRS and no
    transform (the GCPs' or RPCs' CRS is that of the ground points, not of the grid), so
    `proj:code` is null with no `proj:wkt2`, as the projection extension says for
    "non-rectified imagery with Ground Control Points", and `byod:georeferencing` names
    what places it ("gcps" or "rpcs"). Only `proj:shape` is given.
    """
    if with_crs and info.transform is None:
        proj.code = None
        proj.properties["byod:georeferencing"] = info.georeferencing
    elif with_crs:
        # An authority code only when certain; otherwise the full definition, never a guess.
        proj.code = info.crs_code
        if info.crs_code is None:
            proj.wkt2 = info.crs_wkt
        epsg = epsg_number(info.crs_code)
        if epsg is not None:  # for clients that read only proj:epsg (stackstac 0.5)
            proj.properties["proj:epsg"] = epsg
    proj.shape = [info.height, info.width]
    if info.transform is not None:
        a, b, c, d, e, f = info.transform
        proj.transform = [a, b, c, d, e, f]
        corners_x = [
            c,
            c + a * info.width,
            c + b * info.height,
            c + a * info.width + b * info.height,
        ]
        corners_y = [
            f,
            f + d * info.width,
            f + e * info.height,
            f + d * info.width + e * info.height,
        ]
        proj.bbox = [min(corners_x), min(corners_y), max(corners_x), max(corners_y)]


def ground_resolution(info: RasterInfo) -> float | None:
    """`raster:bands[].spatial_resolution`: the pixel size in metres, or None.

    The raster extension defines the field in metres. For a projected CRS it is the pixel
    size in the CRS's linear unit converted to metres (feet grids included), as producers
    publish it (Sentinel-2 10 m, Landsat 30 m). For a geographic CRS, whose pixel size is in
    degrees, it is the ground length of the centre pixel's sides on the CRS's ellipsoid
    (pyproj `Geod.inv`); the longer side is given. Rasters placed by GCPs or RPCs (no
    geotransform) and CRSs pyproj cannot read get None: the field is left out.
    """
    sides = resolution_of(info.transform)
    if sides is None or info.transform is None:
        return None
    try:
        crs = CRS.from_wkt(info.crs_wkt)
    except CRSError:
        return None
    if not crs.is_geographic:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        return max(sides) * unit
    # GDAL's geotransform is in longitude, latitude order whatever the CRS's axis order, in
    # the CRS's angular unit (degrees, or grads as in NTF Paris).
    degrees = math.degrees(crs.axis_info[0].unit_conversion_factor) if crs.axis_info else 1.0
    a, b, c, d, e, f = (v * degrees for v in info.transform)
    lon, lat = c + a * info.width / 2 + b * info.height / 2, f + d * info.width / 2 + e * (
        info.height / 2)  # fmt: skip
    geod = crs.get_geod() or Geod(ellps="WGS84")
    lengths = [geod.inv(lon, lat, lon + dx, lat + dy)[2] for dx, dy in ((a, d), (b, e))]
    metres = max(lengths)
    return metres if math.isfinite(metres) and metres > 0 else None


def raster_data_type(name: str) -> DataType:
    """The raster extension's data_type of a rasterio dtype name (complex types renamed:
    `complex64` is `cfloat32`); a name the extension does not list is `other`."""
    try:
        return DataType(_RASTER_DATA_TYPES.get(name, name))
    except ValueError:
        return DataType.OTHER


def _raster_band(band: BandInfo, spatial_resolution: float | None) -> RasterBand:
    nodata: float | str | None = band.nodata
    if nodata is None and band.has_nan:  # NaN is no data even when no nodata is declared
        nodata = "nan"
    if isinstance(nodata, float) and math.isnan(nodata):
        nodata = "nan"
    elif isinstance(nodata, float) and math.isinf(nodata):
        nodata = "inf" if nodata > 0 else "-inf"
    elif isinstance(nodata, float) and not band.data_type.startswith(("float", "complex")):
        nodata = int(nodata)
    return RasterBand.create(
        nodata=nodata,  # type: ignore[arg-type]  # "nan"/"inf": pystac types them as NoDataStrings
        data_type=raster_data_type(band.data_type),
        spatial_resolution=spatial_resolution,
        scale=band.scale if band.scale != 1.0 else None,
        offset=band.offset if band.offset != 0.0 else None,
        unit=band.unit if band.unit and band.unit.lower() not in _UNITLESS else None,
    )


def _eo_bands(bands: tuple[BandInfo, ...], key: str, product: str | None) -> list[Band] | None:
    """eo:bands for a known product's band, or where colour interpretation names the bands."""
    facts = known_bands().get(product or "", {}).get(key.upper())
    if facts is not None and len(bands) == 1:
        return [
            Band.create(
                name=key,
                common_name=str(facts["common_name"]),
                center_wavelength=float(str(facts["center_wavelength"])),
            )
        ]
    if not any(b.color in _COMMON_NAMES for b in bands):
        return None
    out = []
    for b in bands:
        name = b.description or (b.color if b.color not in {"undefined"} else f"b{b.index}")
        common = _COMMON_NAMES.get(b.color)
        out.append(Band.create(name=name, common_name=common) if common else Band.create(name=name))
    return out
