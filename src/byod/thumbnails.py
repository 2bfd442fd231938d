"""PNG thumbnails read from COG overviews (never the full-resolution data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import DatasetReader

THUMBNAIL_SIZE = 256
# The share of the valid values clipped at each end of the stretch, in percent.
STRETCH_CLIP_PERCENT = 2.0
# zlib level 1, not Pillow's optimize=True: on a noisy 256 px thumbnail 11 ms against 128 ms
# for a file 10% larger (most of a small input's time went to its thumbnail; issue 13).
PNG_LEVEL = 1


def write_thumbnail(src: DatasetReader, dst: Path) -> None:
    """RGB from the bands coloured red, green, blue when there are such; a paletted band 1
    (a land-cover map) in its own colours; else band 1 in grey."""
    colors = src.colorinterp
    if colors[0] == ColorInterp.palette:
        _write_palette_thumbnail(src, dst)
        return
    rgb = [colors.index(c) + 1 for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
           if c in colors]  # fmt: skip
    if len(rgb) == 3:
        write_band_thumbnail([(src, i) for i in rgb], dst)
    else:
        write_band_thumbnail([first_band_with_data([(src, i) for i in src.indexes])], dst)


def first_band_with_data(bands: list[tuple[DatasetReader, int]]) -> tuple[DatasetReader, int]:
    """The first of `bands` with a valid, finite pixel at thumbnail size (its own mask), or
    the first band when none has: a thumbnail of an all-nodata band 1 was empty although
    band 2 held data."""
    for src, index in bands:
        shape = _thumbnail_shape(src)
        valid = src.read_masks(index, out_shape=shape, resampling=Resampling.nearest) > 0
        if not valid.any():
            continue
        values = _magnitude(src.read(index, out_shape=shape, resampling=Resampling.nearest))
        if np.isfinite(values[valid]).any():
            return src, index
    return bands[0]


def write_band_thumbnail(bands: list[tuple[DatasetReader, int]], dst: Path) -> None:
    """A PNG at most THUMBNAIL_SIZE on a side from one band (grey) or three (RGB), possibly
    of different files and resolutions.

    Transparent where the first band's mask (nodata, internal mask, alpha; the dataset's
    mask for three bands, the band's own for one) says invalid and wherever a band is NaN
    or infinite. Complex bands (SAR single-look data) are shown as
    their magnitude. Values are stretched by `stretch`, whatever the data type.
    """
    first = bands[0][0]
    shape = _thumbnail_shape(first)
    data = [_magnitude(src.read(index, out_shape=shape, resampling=Resampling.nearest))
            for src, index in bands]  # fmt: skip
    if len(bands) == 1:
        valid = first.read_masks(bands[0][1], out_shape=shape, resampling=Resampling.nearest) > 0
    else:
        valid = first.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    for band in data:
        valid &= np.isfinite(band)  # NaN is no data even without a nodata tag
    channels = stretch(data, valid)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    # Pillow reads the mode from the shape: (h, w, 4) is RGBA, (h, w, 2) grey + alpha.
    pixels = np.ascontiguousarray(np.stack([*channels, alpha], axis=-1))
    Image.fromarray(pixels).save(dst, format="PNG", compress_level=PNG_LEVEL)


def _write_palette_thumbnail(src: DatasetReader, dst: Path) -> None:
    """Band 1 through its colour table (GDAL's colour interpretation `palette`): class
    values keep their colours rather than being stretched to grey."""
    try:
        table = src.colormap(1)
    except ValueError:  # palette interpretation without a table: grey, as any band
        write_band_thumbnail([(src, 1)], dst)
        return
    shape = _thumbnail_shape(src)
    values = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    if values.dtype.kind not in "ui" or values.min() < 0:  # a table indexes 0..N only
        write_band_thumbnail([(src, 1)], dst)
        return
    lut = np.zeros((max(int(values.max()), max(table)) + 1, 4), np.uint8)
    for value, rgba in table.items():
        lut[value] = rgba
    pixels = lut[values]
    valid = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    pixels[..., 3] = np.where(valid, pixels[..., 3], 0)
    Image.fromarray(np.ascontiguousarray(pixels)).save(dst, format="PNG", compress_level=PNG_LEVEL)


def _thumbnail_shape(src: DatasetReader) -> tuple[int, int]:
    scale = min(THUMBNAIL_SIZE / max(src.width, src.height), 1)
    return max(1, round(src.height * scale)), max(1, round(src.width * scale))


def _magnitude(band: np.ndarray) -> np.ndarray:
    """Real values as float64; the magnitude |z| of complex ones."""
    return np.abs(band) if np.iscomplexobj(band) else band.astype(np.float64)


def stretch(bands: list[np.ndarray], valid: np.ndarray) -> list[np.ndarray]:
    """Linear stretch of the valid values to 0-255 uint8, one range for all bands.

    The range is the 2nd to 98th percentile of the valid values of every band together
    (one range keeps an RGB's colour balance), so each data type is shown by its real values:
    a uint8 band holding 0-99 fills the grey scale rather than staying near black. Invalid
    pixels become 0 (they are transparent). `bands` are 2-D float arrays of one shape.
    """
    values = np.concatenate([band[valid] for band in bands])
    if values.size == 0:
        return [np.zeros(valid.shape, np.uint8) for _ in bands]
    low, high = np.percentile(values, [STRETCH_CLIP_PERCENT, 100 - STRETCH_CLIP_PERCENT])
    if high <= low:  # a constant image, or one dominated by a single value
        low, high = float(values.min()), float(values.max())
    span = float(high - low) or 1.0
    out = []
    for band in bands:
        scaled = (np.where(valid, band, low) - low) / span * 255
        out.append(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return out
