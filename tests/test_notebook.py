"""notebooks/explore_catalog.ipynb runs top to bottom, headless, against Azurite: it ingests
the samples into blob containers itself, searches, plots, computes a composite (odc-stac),
loads the same scenes with stackstac and queries the geoparquet index with geopandas and
DuckDB. Its figures are checked for content, not only for being there."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import nbclient
import nbformat
import numpy as np
import pytest
from PIL import Image

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_catalog.ipynb"


BBOX = (16.0, 48.0, 16.8, 48.5)  # the notebook's search box


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, list[str], list[np.ndarray]]:
    text, errors, images = [], [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
            elif output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}")
            elif "image/png" in output.get("data", {}):
                png = base64.b64decode(output.data["image/png"])
                images.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
    return "".join(text), errors, images


def _drawn(image: np.ndarray) -> tuple[int, float]:
    """Distinct colours of a figure, and the share of its pixels that are not background."""
    pixels = image.reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    background = np.all(pixels >= 250, axis=1)  # matplotlib's white
    return colours, float(1 - background.mean())


def test_notebook_against_azurite(
    azure_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BYOD_CATALOG", f"az://stac-nb-{azure_env}")
    monkeypatch.setenv("BYOD_TARGET", f"az://cogs-nb-{azure_env}")
    monkeypatch.setenv("BYOD_SAMPLES", str(tmp_path / "samples"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources=resources)  # fmt: skip
    client.execute()
    text, errors, images = _outputs(notebook)
    assert errors == []
    assert "ingested the samples: {'ingested': 9" in text
    assert "items found: 2" in text  # the 60 % cloudy date is left out
    assert "composite shape: (64, 64)" in text
    # stackstac reads the same two scenes (proj:epsg, absolute signed hrefs) on the same grid.
    assert "stackstac dims: {'time': 2, 'band': 2, 'y': 64, 'x': 64}" in text
    odc = re.findall(r"(\d{4}-\d\d-\d\d) mean NDVI (-?[\d.]+)", text)
    assert len(odc) == 2
    # The index read by geopandas (every item) and queried by DuckDB (the search's two).
    assert "rows: 9," in text
    assert "duckdb rows: 2" in text
    # The map is zoomed to the search box: it holds the box, and not much more.
    extent = re.search(r"map extent: \[([^\]]+)\]", text)
    assert extent is not None
    west, east, south, north = (float(v) for v in extent.group(1).split(","))
    assert west <= BBOX[0] and east >= BBOX[2] and south <= BBOX[1] and north >= BBOX[3]
    assert east - west < 2 * (BBOX[2] - BBOX[0]) and north - south < 2 * (BBOX[3] - BBOX[1])
    assert len(images) == 2  # the footprint map and the NDVI plots
    for image in images:  # not blank: many colours (fills, lines, text) and drawn pixels
        colours, drawn = _drawn(image)
        assert colours > 50 and drawn > 0.05, (colours, drawn)
