"""A new input's fingerprint is computed while the workers convert (issue 14), not before:
its value is still sha256 over the options and the file's bytes, a copy of a planned input
carries it, and a file that changes while it is hashed is ingested again by the next run."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import byod.planning
from byod.config import IngestSettings
from byod.pipeline import plan_run, publish_run
from byod.report import Report, Status
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files


def _settings(tmp_path: Path) -> IngestSettings:
    return IngestSettings(source=str(tmp_path / "src"), collection="test",
                          target=str(tmp_path / "data"), catalog=str(tmp_path / "catalog"),
                          workers=2, timeout_s=120)  # fmt: skip


def _expected(settings: IngestSettings, path: Path) -> str:
    """sources.fingerprint's definition, computed here: sha256 of the output-shaping options,
    then NUL, the file name, NUL and the hex sha256 of the file's bytes."""
    digest = hashlib.sha256(byod.planning._recipe(settings).encode())
    digest.update(b"\0" + path.name.encode() + b"\0")
    digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def _fingerprints(tmp_path: Path) -> dict[str, Any]:
    items = item_files(tmp_path / "catalog", "test")
    return {i: json.loads(p.read_text())["properties"]["byod:fingerprint"]
            for i, p in items.items()}  # fmt: skip


def test_a_new_inputs_fingerprint_is_the_files_hash_and_survives_a_copy(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a = write_raster("a_20240101.tif", ramp())
    settings = _settings(tmp_path)
    run = plan_run(settings)
    (work,) = run.todo
    assert isinstance(work._fingerprint, Future)  # hashed in a thread, not at planning
    copied = pickle.loads(pickle.dumps(work))  # what Prefect and Dask send: resolved first
    assert copied.fingerprint == work.fingerprint == _expected(settings, a)
    assert copied.fingerprint_s == work.fingerprint_s >= 0
    publish_run(run, [])  # ends the run (its marker), nothing converted: nothing published

    first = run_ingest()
    assert [r.status for r in first.rows] == [Status.INGESTED]
    assert first.rows[0].stages is not None and "fingerprint" in first.rows[0].stages
    assert _fingerprints(tmp_path) == {"a_20240101": _expected(settings, a)}
    again = run_ingest()
    assert [r.status for r in again.rows] == [Status.UNCHANGED]


def test_an_input_with_an_item_is_hashed_at_planning(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a = write_raster("a_20240101.tif", ramp())
    run_ingest()
    write_raster(a.name, ramp() * 3)  # changed: whether it is, needs the hash now
    write_raster("b_20240102.tif", ramp())
    settings = _settings(tmp_path)
    run = plan_run(settings)
    by_input = {w.candidate.relpath: w for w in run.todo}
    assert isinstance(by_input[a.name]._fingerprint, str)
    assert isinstance(by_input["b_20240102.tif"]._fingerprint, Future)  # new: deferred
    assert by_input[a.name].fingerprint == _expected(settings, a)
    assert by_input["b_20240102.tif"].fingerprint == _expected(settings, tmp_path / "src" /
                                                               "b_20240102.tif")  # fmt: skip
    publish_run(run, [])


def test_a_file_changed_while_it_is_hashed_is_ingested_again_by_the_next_run(
    tmp_path: Path,
    write_raster: WriteRaster,
    run_ingest: Callable[..., Report],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = write_raster("a_20240101.tif", ramp())
    real = byod.planning.fingerprint
    writes: list[str] = []

    def edited_meanwhile(candidate: Any, recipe: str) -> str:
        """Another program rewrites the file just as byod starts hashing it."""
        if not writes:
            writes.append(candidate.relpath)
            write_raster(a.name, ramp() + 7)
        return real(candidate, recipe)

    monkeypatch.setattr(byod.planning, "fingerprint", edited_meanwhile)
    first = run_ingest()
    monkeypatch.undo()
    assert writes == [a.name]
    assert [r.status for r in first.rows] == [Status.INGESTED]
    assert any(n.startswith(f"{a.name}: changed while it was ingested") for n in first.notes)
    settings = _settings(tmp_path)
    # The fingerprint recorded is not the file's: the next run cannot call it unchanged.
    assert _fingerprints(tmp_path)["a_20240101"] != _expected(settings, a)

    second = run_ingest()
    assert [r.status for r in second.rows] == [Status.REPLACED]
    assert _fingerprints(tmp_path) == {"a_20240101": _expected(settings, a)}
    assert not any("changed while" in n for n in second.notes)
    third = run_ingest()
    assert [r.status for r in third.rows] == [Status.UNCHANGED]
