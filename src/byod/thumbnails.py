"""PNG thumbnails read from COG overviews (never the full-resolution data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import DatasetReader

THUMBNAIL_SIZE = 256


def write_thumbnail(src: DatasetReader, dst: Path) -> None:
    """RGB from the bands coloured red, green, blue when there are such; else band 1."""
    colors = src.colorinterp
    rgb = [colors.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
           if c in colors]  # fmt: skip
    write_band_thumbnail([(src, i) for i in (rgb if len(rgb) == 3 else [1])], dst)


def write_band_thumbnail(bands: list[tuple[DatasetReader, int]], dst: Path) -> None:
    """A PNG at most THUMBNAIL_SIZE on a side from one band (grey) or three (RGB), possibly
    of different files and resolutions; pixels invalid in the first are transparent."""
    first = bands[0][0]
    scale = min(THUMBNAIL_SIZE / max(first.width, first.height), 1)
    shape = (max(1, round(first.height * scale)), max(1, round(first.width * scale)))
    data = [src.read(index, out_shape=shape, resampling=Resampling.nearest)
            for src, index in bands]  # fmt: skip
    valid = first.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    channels = [_stretch(band, valid) for band in data]
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    # Pillow reads the mode from the shape: (h, w, 4) is RGBA, (h, w, 2) grey + alpha.
    pixels = np.ascontiguousarray(np.stack([*channels, alpha], axis=-1))
    Image.fromarray(pixels).save(dst, format="PNG", optimize=True)


def _stretch(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear 2-98 percentile stretch of the valid pixels to 0-255."""
    if band.dtype == np.uint8:
        return band
    values = band[valid & np.isfinite(band)] if band.dtype.kind == "f" else band[valid]
    if values.size == 0:
        return np.zeros(band.shape, np.uint8)
    low, high = np.percentile(values, [2, 98])
    span = float(high - low) or 1.0
    scaled = (np.nan_to_num(band.astype(np.float64), nan=low) - low) / span * 255
    return np.clip(scaled, 0, 255).astype(np.uint8)
