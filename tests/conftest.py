"""Fixtures: small real GeoTIFFs written with rasterio, an ingest helper, Azurite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Prefect reads its settings at import: keep its home (database, results) out of ~/.prefect,
# and the server it starts for the flow tests from phoning home. Made once, by the process
# that sets it (processes started by tests inherit it), and removed when that one ends.
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="byod-test-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# Superseded files go as soon as the run that superseded them is over (the default keeps them
# 10 min for readers of the previous collection.json): tests check for orphans right after a
# run; tests of the grace period set it themselves (tests/test_kills.py).
os.environ.setdefault("BYOD_SUPERSEDED_GRACE_S", "0")

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.report import Report

WriteRaster = Callable[..., Path]


def write_geotiff(
    path: Path,
    data: np.ndarray,
    *,
    tags: dict[str, str] | None = None,
    mask: np.ndarray | None = None,
    **profile: Any,
) -> Path:
    """Write `data` (bands, rows, cols) as a GeoTIFF; `profile` goes to rasterio (crs,
    transform, nodata, photometric, ...), `tags` become dataset tags, `mask` an internal mask."""
    if data.ndim == 2:
        data = data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "dtype": data.dtype.name, **profile}  # fmt: skip
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **options) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        if mask is not None:
            dst.write_mask(mask.astype("uint8") * 255)
    return path


def write_cf_grid(
    ds: Any, rows: int = 20, cols: int = 30, *, epsg: int = 32633, res: float = 10.0,
    west: float = 500000.0, north: float = 5000000.0,
) -> None:  # fmt: skip
    """On an open netCDF4.Dataset: a `rows` x `cols` grid of `res` m cells from (west, north)
    in a transverse Mercator CRS, as CF writes it (projection_x/y_coordinate variables `x`,
    `y` at cell centres and a `crs` grid mapping with its WKT)."""
    from pyproj import CRS

    ds.createDimension("y", rows)
    ds.createDimension("x", cols)
    x = ds.createVariable("x", "f8", ("x",))
    x[:] = west + res / 2 + res * np.arange(cols)
    x.standard_name = "projection_x_coordinate"
    y = ds.createVariable("y", "f8", ("y",))
    y[:] = north - res / 2 - res * np.arange(rows)
    y.standard_name = "projection_y_coordinate"
    crs = ds.createVariable("crs", "i4")
    crs.spatial_ref = crs.crs_wkt = CRS.from_epsg(epsg).to_wkt()
    crs.grid_mapping_name = "transverse_mercator"


@pytest.fixture
def write_raster(tmp_path: Path) -> WriteRaster:
    """Write a GeoTIFF under tmp_path/src (UTM 33N, 10 m, unless told otherwise)."""

    def write(
        name: str,
        data: np.ndarray,
        *,
        crs: Any = "EPSG:32633",
        transform: Affine | None = None,
        folder: Path | None = None,
        **profile: Any,
    ) -> Path:
        if crs is not None:
            profile["crs"] = crs
        profile["transform"] = from_origin(500000, 5000000, 10, 10) if transform is None else (
            transform)  # fmt: skip
        return write_geotiff((folder or tmp_path / "src") / name, data, **profile)

    return write


@pytest.fixture
def run_ingest(tmp_path: Path) -> Callable[..., Report]:
    """Ingest tmp_path/src into tmp_path/data and tmp_path/catalog (overridable)."""

    def run(**overrides: Any) -> Report:
        options: dict[str, Any] = {
            "source": str(tmp_path / "src"),
            "collection": "test",
            "target": str(tmp_path / "data"),
            "catalog": str(tmp_path / "catalog"),
            "workers": 2,
            "timeout_s": 120,
        }
        options.update(overrides)
        return ingest(IngestSettings(**options))

    return run


def ramp(rows: int = 64, cols: int = 64, dtype: str = "uint16", bands: int = 1) -> np.ndarray:
    """Values that vary in both directions, never equal to a typical nodata value."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    base = (yy * cols + xx) % 1000 + 1
    return np.stack([base + 10 * b for b in range(bands)]).astype(dtype)


# --- Azurite: the real Azure Storage emulator, on loopback ---------------------------------

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "azurite-blob"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Azurite's blob service on a free loopback port; yield its connection string."""
    if not AZURITE_BIN.exists():
        pytest.fail("Azurite is not installed: run scripts/test (it runs npm ci) first")
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    log = (location / "azurite.log").open("w")
    process = subprocess.Popen(
        [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(location), "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Azurite did not start; see {location / 'azurite.log'}")
        time.sleep(0.1)
    try:
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def azure_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point byod at Azurite through the environment, as a hub would; a uuid names this
    test's containers so tests never see each other's blobs."""
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                 "AZURE_SUBSCRIPTION_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    return uuid.uuid4().hex[:10]
