"""notebooks/explore_catalog.ipynb runs top to bottom, headless, against Azurite: it ingests
the samples into blob containers itself, searches, plots and computes a composite."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_catalog.ipynb"


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, list[str], int]:
    text, errors, images = [], [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
            elif output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}")
            elif "image/png" in output.get("data", {}):
                images += 1
    return "".join(text), errors, images


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
    assert images == 2  # the footprint map and the NDVI plots
