"""PNG thumbnails read from a COG's overviews (never the full-resolution data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import DatasetReader

THUMBNAIL_SIZE = 256


def write_thumbnail(src: DatasetReader, dst: Path) -> None:
    """An RGB(A) or grey PNG at most THUMBNAIL_SIZE on a side, invalid pixels transparent."""
    scale = THUMBNAIL_SIZE / max(src.width, src.height)
    shape = (max(1, round(src.height * min(scale, 1))), max(1, round(src.width * min(scale, 1))))
    colors = src.colorinterp
    rgb = [colors.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
           if c in colors]  # fmt: skip
    indexes = rgb if len(rgb) == 3 else [1]
    data = src.read(indexes, out_shape=(len(indexes), *shape), resampling=Resampling.nearest)
    valid = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    bytes_ = np.stack([_stretch(band, valid) for band in data], axis=-1)
    alpha = np.where(valid, 255, 0).astype(np.uint8)[..., None]
    pixels = np.concatenate([bytes_, alpha], axis=-1)
    # Pillow reads the mode from the shape: (h, w, 4) is RGBA, (h, w, 2) grey + alpha.
    Image.fromarray(np.ascontiguousarray(pixels)).save(dst, format="PNG", optimize=True)


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
