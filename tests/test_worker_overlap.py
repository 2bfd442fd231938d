"""The worker's steps after a conversion run side by side (issue 14): each COG is hashed in a
thread while the worker inspects it, converts the next band, traces the footprint and draws
the thumbnail, and the footprint's mask is pooled with `reduceat`. What the worker returns
must be what an independent reading of the COGs gives: the sha256 of the file's bytes
(hashlib), every valid pixel (rasterio's full-resolution read) inside the footprint (shapely,
pyproj), the thumbnail's transparency from rasterio's mask; an error in any of the steps
side by side reaches the caller and leaves no thread behind.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from shapely.geometry import shape
from shapely.ops import transform as reproject

from byod import rasters, work
from byod.config import IngestSettings
from byod.metadata import MetadataRules
from byod.reasons import Reason, RejectedInput
from byod.records import Scene
from tests.conftest import write_geotiff

UTM = "EPSG:32633"
TRANSFORM = from_origin(500000, 5000000, 10, 10)
ROWS, COLS = 1100, 1300  # factor 2 in the pooled mask: several 512-pixel chunks
LONE = ((20, 40), (1080, 1290), (600, 15))  # valid pixels alone in the nodata border


def _job(path: Path, workdir: Path, *, bands: tuple[tuple[str, Path], ...] = (),
         sidecars: bool = False) -> work.Job:  # fmt: skip
    settings = IngestSettings(source=str(path.parent))
    workdir.mkdir(parents=True, exist_ok=True)
    return work.Job(path=path, relpath=path.name, item_id=path.stem,
                    has_georef_sidecars=sidecars, workdir=workdir,
                    rules=MetadataRules(settings.time, settings.clouds), metadata_paths=(),
                    mask_path=None, user_metadata_path=None, compression="deflate", threads=2,
                    max_pixels=settings.max_pixels, bands=bands, source_root=path.parent,
                    cache_bytes=64 * 1024 * 1024)  # fmt: skip


def _slanted(count: int, seed: int = 0) -> np.ndarray:
    """`count` uint16 bands, valid in a slanted parallelogram (as a satellite scene in its
    tile) and at the LONE pixels; 0 elsewhere."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    left = (0.08 + 0.15 * rows / ROWS) * COLS
    valid = (cols >= left) & (cols < left + 0.7 * COLS) & (rows >= 30) & (rows < ROWS - 40)
    for r, c in LONE:
        valid[r, c] = True
    data = rng.integers(1, 4000, size=(count, ROWS, COLS), dtype=np.uint16)
    return np.where(valid, data, 0).astype(np.uint16)


def _no_checksum_thread() -> bool:
    return not any(t.name.startswith("byod-checksum") for t in threading.enumerate())


def _check_files(scene: Scene) -> None:
    """Every COG's and the thumbnail's size and sha256 are those of the bytes on disk."""
    for file in [*(a.file for a in scene.assets), scene.thumbnail]:
        data = Path(file.path).read_bytes()
        assert (file.size, file.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def _check_footprint(scene: Scene) -> None:
    """Every pixel valid in any COG lies inside the footprint, by its four corners; the
    footprint is not much larger than the valid pixels (their area from the pixel count)."""
    valid = np.zeros((ROWS, COLS), bool)
    for asset in scene.assets:
        with rasterio.open(asset.file.path) as cog:
            valid |= cog.dataset_mask() > 0  # the full-resolution read, no overviews
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform
    footprint = reproject(to_utm, shape(scene.footprint.geometry))
    rows, cols = np.nonzero(valid)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        xs, ys = TRANSFORM * (cols + dc, rows + dr)
        inside = shapely.contains_xy(footprint.buffer(0.05), np.asarray(xs), np.asarray(ys))
        assert inside.all(), f"{(~inside).sum()} valid pixel corners outside"
    assert footprint.area < 1.15 * valid.sum() * 100.0  # 10 m pixels


def _check_thumbnail(scene: Scene, band_cog: Path) -> None:
    """The thumbnail is transparent exactly where rasterio reads band 1 of `band_cog` as
    nodata at the thumbnail's size (nearest, from the COG's overviews)."""
    pixels = np.asarray(Image.open(scene.thumbnail.path))
    with rasterio.open(band_cog) as cog:
        mask = cog.read_masks(1, out_shape=pixels.shape[:2], resampling=Resampling.nearest)
    assert np.array_equal(pixels[..., -1] > 0, mask > 0)


def test_one_cog_hashed_beside_footprint_and_thumbnail(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "src" / "scene.tif", _slanted(4), crs=UTM,
                         transform=TRANSFORM, nodata=0)  # fmt: skip
    result = work.prepare(_job(path, tmp_path / "work"), lambda stage: None)
    (scene,) = result.scenes
    assert [a.key for a in scene.assets] == ["data"]
    _check_files(scene)
    _check_footprint(scene)
    _check_thumbnail(scene, scene.assets[0].file.path)
    assert _no_checksum_thread()


def test_one_cog_per_band_each_hashed(tmp_path: Path) -> None:
    """Bands with different nodata (GDAL's PAM `.aux.xml`) make one COG per band, each
    hashed while the next band converts; the footprint is valid where any band is."""
    data = _slanted(2)
    data[1, :300, :] = np.where(data[1, :300, :] == 0, 9, 0)  # band 2: 9 is its nodata
    path = write_geotiff(tmp_path / "src" / "pair.tif", data, crs=UTM, transform=TRANSFORM)
    Path(f"{path}.aux.xml").write_text(
        "<PAMDataset>"
        '<PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand>'
        '<PAMRasterBand band="2"><NoDataValue>9</NoDataValue></PAMRasterBand>'
        "</PAMDataset>"
    )
    with rasterio.open(path) as src:
        assert src.nodatavals == (0.0, 9.0)  # GDAL reads them: the input is as meant
    result = work.prepare(_job(path, tmp_path / "work", sidecars=True), lambda stage: None)
    (scene,) = result.scenes
    assert [a.key for a in scene.assets] == ["b1", "b2"]
    _check_files(scene)
    _check_footprint(scene)
    _check_thumbnail(scene, scene.assets[0].file.path)
    assert _no_checksum_thread()


def test_band_per_file_scene_each_hashed(tmp_path: Path) -> None:
    bands = tuple((name, write_geotiff(tmp_path / "src" / f"S_{name}.tif", _slanted(1, i),
                                       crs=UTM, transform=TRANSFORM, nodata=0))
                  for i, name in enumerate(("B02", "B03", "B04")))  # fmt: skip
    result = work.prepare(_job(bands[0][1], tmp_path / "work", bands=bands), lambda s: None)
    (scene,) = result.scenes
    assert [a.key for a in scene.assets] == ["B02", "B03", "B04"]
    _check_files(scene)
    _check_footprint(scene)
    assert _no_checksum_thread()


def test_rejected_while_hashing_leaves_no_thread(tmp_path: Path) -> None:
    """An input with no valid pixel is rejected by the footprint while its COG is being
    hashed: the rejection reaches the caller and the hashing thread is gone."""
    path = write_geotiff(tmp_path / "src" / "empty.tif", np.zeros((2, ROWS, COLS), np.uint16),
                         crs=UTM, transform=TRANSFORM, nodata=0)  # fmt: skip
    with pytest.raises(RejectedInput) as caught:
        work.prepare(_job(path, tmp_path / "work"), lambda stage: None)
    assert caught.value.reason is Reason.NO_VALID_DATA
    assert _no_checksum_thread()


def test_failed_hash_reaches_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hash that fails (the COG unreadable: injected) is the input's error, not a hang or
    a checksum left out; no thread is left behind."""

    def unreadable(path: str | Path) -> str:
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(work, "file_sha256", unreadable)
    path = write_geotiff(tmp_path / "src" / "scene.tif", _slanted(1), crs=UTM,
                         transform=TRANSFORM, nodata=0)  # fmt: skip
    with pytest.raises(OSError, match="Input/output error"):
        work.prepare(_job(path, tmp_path / "work"), lambda stage: None)
    assert _no_checksum_thread()


@pytest.mark.parametrize(
    ("size", "shape"),
    [((1100, 1300), (550, 650)), ((10980, 7), (998, 7)), ((997, 3001), (332, 1000)),
     ((5, 5), (5, 5)), ((1, 9), (1, 3))],
)  # fmt: skip
def test_pooled_mask_is_the_any_of_each_cell(size: tuple[int, int], shape: tuple[int, int]) -> None:
    """The pooled mask of a full read is, cell by cell, whether any pixel overlapping the
    cell's extent [i*sy, (i+1)*sy] x [j*sx, (j+1)*sx] is valid (computed here by slicing)."""
    full = np.random.default_rng(2).random(size) < 0.002
    pooled = rasters._pooled_chunks(lambda window: full[window.toslices()], size, shape)
    sy, sx = size[0] / shape[0], size[1] / shape[1]
    expected = np.zeros(shape, bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            r0, r1 = int(np.floor(i * sy)), min(size[0], int(np.ceil((i + 1) * sy)))
            c0, c1 = int(np.floor(j * sx)), min(size[1], int(np.ceil((j + 1) * sx)))
            expected[i, j] = full[r0:r1, c0:c1].any()
    assert np.array_equal(pooled, expected)
