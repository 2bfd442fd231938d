"""Build the STAC Item of one scene from plain records. No I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pystac
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension

from byod.clouds import CloudEstimate
from byod.footprint import Footprint
from byod.rasters import BandInfo, RasterInfo
from byod.scenes import MASK_BANDS, known_bands
from byod.temporal import Acquisition

COG_MEDIA_TYPE = pystac.MediaType.COG  # image/tiff; application=geotiff; profile=cloud-optimized
THUMBNAIL_ASSET = "thumbnail"

# GDAL colour interpretations that are eo common band names.
_COMMON_NAMES = {"red": "red", "green": "green", "blue": "blue"}
_UNITLESS = {"", "unknown"}


@dataclass(frozen=True)
class StoredFile:
    href: str  # where it was stored: absolute path or URL
    size: int
    sha256: str


@dataclass(frozen=True)
class SceneAsset:
    """One stored COG: `data` for a single raster, a band name in a multi-file scene."""

    key: str
    source_name: str  # the input file it was made from
    stored: StoredFile
    raster: RasterInfo  # read from the stored COG
    resolution: tuple[float, float] | None  # pixel size along columns and rows, CRS units
    passthrough: bool


@dataclass(frozen=True)
class Scene:
    """Everything an item says, gathered by the pipeline from the stored COGs."""

    item_id: str
    source: str  # the input's path relative to the source folder
    fingerprint: str
    acquisition: Acquisition
    footprint: Footprint
    assets: tuple[SceneAsset, ...]
    thumbnail: StoredFile
    clouds: CloudEstimate | None = None
    product: str | None = None  # "landsat", "sentinel2": band facts from byod/data/bands.json


def multihash_sha256(hex_digest: str) -> str:
    """The file extension's checksum: multihash code 0x12 (sha2-256), length 0x20, digest."""
    return "1220" + hex_digest


def primary_asset(assets: tuple[SceneAsset, ...]) -> SceneAsset:
    """The asset the item's projection describes: the finest band that is not a mask."""
    data = [a for a in assets if a.key.upper() not in MASK_BANDS] or list(assets)
    return min(data, key=lambda a: (a.resolution or (0.0, 0.0))[0])


def build_item(scene: Scene) -> pystac.Item:
    item = pystac.Item(
        id=scene.item_id,
        geometry=scene.footprint.geometry,
        bbox=scene.footprint.bbox,
        datetime=scene.acquisition.datetime,
        properties={
            "byod:source": scene.source,
            "byod:fingerprint": scene.fingerprint,
            "byod:datetime_source": scene.acquisition.source,
            "byod:cog_passthrough": all(a.passthrough for a in scene.assets),
        },
    )
    if scene.acquisition.start is not None:
        item.common_metadata.start_datetime = scene.acquisition.start
        item.common_metadata.end_datetime = scene.acquisition.end
    _add_clouds(item, scene.clouds)
    primary = primary_asset(scene.assets)
    _add_projection(ProjectionExtension.ext(item, add_if_missing=True), primary.raster)
    for part in scene.assets:
        asset = pystac.Asset(
            href=part.stored.href,
            media_type=COG_MEDIA_TYPE,
            roles=["data", "cloud"] if part.key.upper() in MASK_BANDS else ["data"],
            title=f"{part.source_name} (Cloud Optimized GeoTIFF)",
        )
        item.add_asset(part.key, asset)
        if part.raster.transform != primary.raster.transform:
            _add_projection(ProjectionExtension.ext(asset), part.raster, with_crs=False)
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            _raster_band(b, part.resolution) for b in part.raster.bands
        ]
        eo_bands = _eo_bands(part.raster.bands, part.key, scene.product)
        if eo_bands is not None:
            EOExtension.ext(asset, add_if_missing=True).bands = eo_bands
        _add_file(asset, part.stored)
    thumbnail = pystac.Asset(
        href=scene.thumbnail.href, media_type=pystac.MediaType.PNG, roles=["thumbnail"],
        title="Thumbnail",
    )  # fmt: skip
    item.add_asset(THUMBNAIL_ASSET, thumbnail)
    _add_file(thumbnail, scene.thumbnail)
    return item


def _add_file(asset: pystac.Asset, stored: StoredFile) -> None:
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.size = stored.size
    file_ext.checksum = multihash_sha256(stored.sha256)


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


def _add_projection(proj: Any, info: RasterInfo, *, with_crs: bool = True) -> None:
    if with_crs:
        # An authority code only when certain; otherwise the full definition, never a guess.
        proj.code = info.crs_code
        if info.crs_code is None:
            proj.wkt2 = info.crs_wkt
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


def resolution_of(transform: tuple[float, ...] | None) -> tuple[float, float] | None:
    """Pixel size along columns and rows; for rotated grids the length of each pixel side."""
    if transform is None:
        return None
    a, b, _, d, e, _ = transform
    return math.hypot(a, d), math.hypot(b, e)


def _raster_band(band: BandInfo, resolution: tuple[float, float] | None) -> RasterBand:
    nodata: float | str | None = band.nodata
    if isinstance(nodata, float) and math.isnan(nodata):
        nodata = "nan"
    elif isinstance(nodata, float) and math.isinf(nodata):
        nodata = "inf" if nodata > 0 else "-inf"
    elif isinstance(nodata, float) and not band.data_type.startswith(("float", "complex")):
        nodata = int(nodata)
    return RasterBand.create(
        nodata=nodata,  # type: ignore[arg-type]
        data_type=DataType(band.data_type),
        spatial_resolution=None if resolution is None else max(resolution),
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
                center_wavelength=float(facts["center_wavelength"]),
            )
        ]  # type: ignore[arg-type]
    if not any(b.color in _COMMON_NAMES for b in bands):
        return None
    out = []
    for b in bands:
        name = b.description or (b.color if b.color not in {"undefined"} else f"b{b.index}")
        common = _COMMON_NAMES.get(b.color)
        out.append(Band.create(name=name, common_name=common) if common else Band.create(name=name))
    return out
