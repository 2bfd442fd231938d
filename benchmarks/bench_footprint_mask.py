"""Time the footprint's valid-data mask on a 1 GB COG: nearest-neighbour from overviews (before
issue 9's review, D1) against the max-pooled full-resolution read byod does now.

    .venv/bin/python benchmarks/bench_footprint_mask.py [--workdir DIR]

The input: 11180 x 11180 px, 4 bands uint16 (1.0 GB), nodata 0 outside a slanted band, as a
satellite scene in its tile; converted with byod's `to_cog`. Only measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.transform import from_origin
from rasterio.windows import Window

from byod import rasters
from byod.cog import to_cog

SIDE = 11180


def make_cog(workdir: Path) -> Path:
    src, cog = workdir / "in.tif", workdir / "cog.tif"
    profile = dict(driver="GTiff", width=SIDE, height=SIDE, count=4, dtype="uint16", nodata=0,
                   crs="EPSG:32633", transform=from_origin(500000, 5500000, 10, 10), tiled=True,
                   blockxsize=512, blockysize=512)  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(src, "w", **profile) as dst:
        for r0 in range(0, SIDE, 512):
            h = min(512, SIDE - r0)
            rows, cols = np.arange(r0, r0 + h)[:, None], np.arange(SIDE)[None, :]
            inside = (cols > rows * 0.2 + 300) & (cols < rows * 0.2 + SIDE * 0.75)
            block = rng.integers(1, 4000, (4, h, SIDE), dtype=np.uint16) * inside
            dst.write(block, window=Window(0, r0, SIDE, h))
    to_cog(str(src), cog, compression="deflate", dtypes=["uint16"] * 4, threads=2,
           may_pass_through=False)  # fmt: skip
    src.unlink()
    return cog


def nearest(src: DatasetReader) -> np.ndarray:
    shape = rasters._decimated_shape(src)
    return np.asarray(src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0)


def every_chunk(src: DatasetReader) -> np.ndarray:
    shape = rasters._decimated_shape(src)
    return rasters._pooled_chunks(lambda w: src.dataset_mask(window=w) > 0,
                                  (src.height, src.width), shape)  # fmt: skip


def timed(label: str, cog: Path, run: Callable[[DatasetReader], object]) -> None:
    best = float("inf")
    for _ in range(2):
        with rasterio.open(cog) as src:
            start = time.perf_counter()
            result = run(src)
            best = min(best, time.perf_counter() - start)
    mask = result[0] if isinstance(result, tuple) else result
    print(f"{label:55s} {best:6.2f} s   valid cells {int(np.sum(mask))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        cog = make_cog(Path(tmp))
        timed("nearest from overviews (before)", cog, nearest)
        timed("pooled full resolution, every chunk read", cog, every_chunk)
        timed("byod.rasters.decimated_mask (chunks with nodata read)", cog, rasters.decimated_mask)


if __name__ == "__main__":
    main()
