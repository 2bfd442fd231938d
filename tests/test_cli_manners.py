"""The command line's manners (issue 12, "What users hit today"): one-line messages and the
right exit code instead of tracebacks, refusals before anything is written, no empty
collection from a run that rejected everything, `validate` naming the field and the rule,
a readable `--help`, and `--version` without importing the heavy modules."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from byod.cli import app
from byod.report import Report
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files

BYOD = str(Path(sys.executable).with_name("byod"))
SCHEMAS = Path(__file__).parents[1] / "src" / "byod" / "schemas"
# Azurite's published development account (a documented constant, not a secret): enough
# for byod to sign URLs locally, no server is contacted.
DEV_ACCOUNT = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
_AZURE_VARIABLES = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME",
                    "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID",
                    "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID")  # fmt: skip


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, prog_name="byod")


def one_error_line(result: Result) -> str:
    """The single `error: ...` line a refused command prints, and nothing else."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "unexpected" not in lines[0], lines[0]  # a known fault, not a bug's message
    return lines[0]


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --- places that cannot be used: exit 2, one line, nothing written --------------------------


@pytest.mark.parametrize("under", [False, True], ids=["the-file", "a-folder-under-a-file"])
@pytest.mark.parametrize("option", ["--catalog", "--target"])
def test_a_catalog_or_target_that_is_a_file_is_refused_before_anything_is_written(
    tmp_path: Path, write_raster: WriteRaster, option: str, under: bool
) -> None:
    write_raster("a.tif", ramp())
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    places = {"--catalog": tmp_path / "cat", "--target": tmp_path / "data"}
    places[option] = a_file / "stac" if under else a_file
    result = invoke("ingest", str(tmp_path / "src"), "--quiet",
                    *(x for o, p in places.items() for x in (o, str(p))))  # fmt: skip
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(places[option]) in line and "file" in line
    assert a_file.read_text() == "mine"
    assert not (tmp_path / "cat").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", ["search", "validate", "browse"])
def test_a_catalog_that_is_a_file_or_an_unknown_scheme_is_a_usage_error(
    tmp_path: Path, command: str
) -> None:
    a_file = tmp_path / "catalog.txt"
    a_file.write_text("not a catalog")
    for catalog in ("s3://x", str(a_file)):
        result = invoke(command, catalog, *(["--port", "0"] if command == "browse" else []))
        assert result.exit_code == 2, (catalog, result.output)
        assert catalog in one_error_line(result)


def test_validate_a_blob_catalog_without_credentials_says_so(no_credentials: None) -> None:
    result = invoke("validate", "az://stac")
    assert result.exit_code == 2
    assert "credentials" in one_error_line(result)


def test_browse_on_a_busy_port_says_which_port_and_exits_2(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("a.tif", ramp())
    made = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "cat"),
                  "--target", str(tmp_path / "data"), "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # A process of its own: a browse that did start would serve until killed. Its temp
        # folder (for the pages) in a TMPDIR of its own: none may be left behind.
        temp = tmp_path / "tmp"
        temp.mkdir()
        args = [BYOD, "browse", str(tmp_path / "cat"), "--port", str(port)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False,
                                env={**os.environ, "TMPDIR": str(temp)})  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"port {port}" in line and "--port" in line
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_browse_stopped_by_a_signal_leaves_no_temp_folder(
    tmp_path: Path, write_raster: WriteRaster, signum: int
) -> None:
    """`kill`, a closed terminal (or Ctrl-C, the same path, which a test cannot send: a
    process started in the background ignores SIGINT) stop browsing: pages removed."""
    write_raster("a.tif", ramp())
    made = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "cat"),
                  "--target", str(tmp_path / "data"), "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.output
    temp = tmp_path / "tmp"
    temp.mkdir()
    args = [BYOD, "browse", str(tmp_path / "cat"), "--port", "0"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "TMPDIR": str(temp)}) as browse:  # fmt: skip
        assert browse.stdout is not None
        line = browse.stdout.readline()  # `browse ... at http://127.0.0.1:PORT/ (Ctrl-C stops)`
        assert "http://127.0.0.1:" in line, line
        assert [p.name[:12] for p in temp.iterdir()] == ["byod-browse-"]
        browse.send_signal(signum)
        assert browse.wait(timeout=60) == 0
    assert list(temp.iterdir()) == []


# --- a run that rejected every input adds no collection -------------------------------------


def test_a_run_that_rejects_every_input_adds_no_empty_collection(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.tif").write_bytes(b"II*\x00 this is not a TIFF")
    (src / "empty.tif").write_bytes(b"")
    catalog = tmp_path / "cat"
    result = invoke("ingest", str(src), "--catalog", str(catalog), "--target",
                    str(tmp_path / "data"), "--json")  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["rejected"] == 2
    assert not (catalog / "src" / "collection.json").exists()
    root = catalog / "catalog.json"
    children = json.loads(root.read_text())["links"] if root.exists() else []
    assert [link for link in children if link["rel"] == "child"] == []


def test_a_rejected_input_leaves_a_published_collection_in_place(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """The other side of the rule: a collection that holds items stays in the catalog."""
    write_raster("a.tif", ramp())
    places = ["--catalog", str(tmp_path / "cat"), "--target", str(tmp_path / "data"), "-q"]
    assert invoke("ingest", str(tmp_path / "src"), *places).exit_code == 0
    (tmp_path / "src" / "broken.tif").write_bytes(b"II*\x00 not a TIFF")
    assert invoke("ingest", str(tmp_path / "src"), *places).exit_code == 1
    root = json.loads((tmp_path / "cat" / "catalog.json").read_text())
    assert [link["href"] for link in root["links"] if link["rel"] == "child"] == [
        "./src/collection.json"
    ]
    assert set(item_files(tmp_path / "cat", "src")) == {"a"}


# --- sign: only blob URLs ---------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [True, False], ids=["credentials", "none"])
def test_sign_refuses_a_local_path_whatever_the_credentials(
    tmp_path: Path, write_raster: WriteRaster, no_credentials: None, credentials: bool
) -> None:
    path = write_raster("a.tif", ramp())
    env = {"AZURE_STORAGE_CONNECTION_STRING": DEV_ACCOUNT} if credentials else None
    result = invoke("sign", str(path), env=env)
    assert result.exit_code == 2
    assert "only Azure blob URLs can be signed" in one_error_line(result)


def test_sign_refuses_a_url_outside_the_account_and_signs_one_inside(no_credentials: None) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": DEV_ACCOUNT}
    outside = invoke("sign", "https://example.org/a.tif", env=env)
    assert outside.exit_code == 2
    assert "devstoreaccount1" in one_error_line(outside)
    inside = invoke("sign", "az://data/a.tif", env=env)
    assert inside.exit_code == 0, inside.output
    url = inside.stdout.strip()
    assert url.startswith("http://127.0.0.1:10000/devstoreaccount1/data/a.tif?")
    assert "sp=r" in url and "sig=" in url  # read-only SAS (Azure's SAS query parameters)


# --- validate names the field and the schema rule ---------------------------------------------


def _pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at a JSON pointer."""
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_validate_names_the_field_and_the_schema_rule_that_failed(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("a.tif", ramp())
    catalog = tmp_path / "cat"
    made = invoke("ingest", str(tmp_path / "src"), "--catalog", str(catalog), "--target",
                  str(tmp_path / "data"), "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.output
    item_path = item_files(catalog, "src")["a"]
    item = json.loads(item_path.read_text())
    item["properties"]["datetime"] = "yesterday"  # STAC: RFC 3339 with Z or +00:00
    item_path.write_text(json.dumps(item))
    collection_path = catalog / "src" / "collection.json"
    collection = json.loads(collection_path.read_text())
    del collection["license"]  # required by the collection spec
    collection_path.write_text(json.dumps(collection))

    result = invoke("validate", str(catalog), "--json")
    assert result.exit_code == 1, result.output
    found = {p["kind"]: p for p in json.loads(result.stdout)["invalid"]}
    assert set(found) == {"item", "collection"}

    expected = {"item": "$.properties.datetime", "collection": "$.license"}
    for kind, field in expected.items():
        problem = found[kind]
        assert problem["field"] == field
        assert field in problem["message"] and problem["rule"] in problem["message"]
        keyword, _, where = problem["rule"].partition(" at ")
        url, _, pointer = where.partition("#")
        # The pointer leads, in the shipped copy of the published schema, to the keyword.
        assert url.startswith("https://schemas.stacspec.org/v1.1.0/")
        shipped = SCHEMAS / "stac-spec" / url.removeprefix("https://schemas.stacspec.org/")
        assert pointer.rsplit("/", 1)[-1] == keyword
        rule = _pointer(json.loads(shipped.read_text()), pointer)
        if kind == "item":
            assert keyword in {"pattern", "format"}
            if keyword == "pattern":  # the rule really refuses the value
                assert re.search(rule, "yesterday") is None
        else:
            assert keyword == "required" and "license" in rule

    text = invoke("validate", str(catalog))
    assert "$.properties.datetime" in text.output and "$.license" in text.output


# --- help and version -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "usage"),
    [("ingest", "byod ingest [OPTIONS] SOURCE"), ("validate", "byod validate [OPTIONS] CATALOG"),
     ("search", "byod search [OPTIONS] CATALOG"), ("browse", "byod browse [OPTIONS] CATALOG"),
     ("sign", "byod sign [OPTIONS] URL")],
)  # fmt: skip
def test_help_names_arguments_plainly_and_flags_take_no_value(command: str, usage: str) -> None:
    result = invoke(command, "--help", env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0
    assert f"Usage: {usage}" in result.output
    assert "{" not in result.output.split("\n\n", 2)[1]  # no typer-style {argument}
    for metavar in ("<bool>", "<int>", "<float>", "<str>", "%Y", "%H"):
        assert metavar not in result.output, metavar


def test_help_mentions_blob_urls_for_source_target_and_catalog() -> None:
    result = invoke("ingest", "--help", env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    rows = [line for line in result.output.splitlines()
            if any(name in line for name in ("SOURCE ", "--target", "--catalog"))]  # fmt: skip
    assert len([r for r in rows if "az://" in r]) == 3, "\n".join(rows)
    top = invoke("--help", env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert "<int>" not in top.output and "<bool>" not in top.output and "--version" in top.output
    for command in ("validate", "search", "browse"):
        assert "az://" in invoke(command, "--help", env={"COLUMNS": "250"}).output


def test_version_prints_the_installed_distribution_version() -> None:
    result = subprocess.run([BYOD, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"byod {version('byod')}"


def test_the_cli_imports_no_heavy_module_until_a_command_needs_it() -> None:
    """What makes `byod --version` quick (measured in benchmarks/README.md): GDAL, pystac,
    Azure's SDK and the pipeline are imported by the commands that use them."""
    heavy = ("rasterio", "pystac", "azure.storage.blob", "azure.identity", "byod.pipeline",
             "byod.validate", "numpy", "pyarrow", "rich.table", "rich.progress")  # fmt: skip
    code = f"import sys, byod.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_the_command_ends_with_its_code_and_its_output_whole_through_a_pipe(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """`byod` ends without the interpreter's teardown (byod.__main__, `os._exit`): its
    output, block-buffered into a pipe and not flushed by the command (`validate --json`
    writes to sys.stdout), still arrives whole, and its exit code is the command's."""
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    catalog = str(tmp_path / "catalog")
    # Block-buffered as anywhere else (this machine's environment sets PYTHONUNBUFFERED).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    piped = subprocess.run([BYOD, "validate", catalog, "--json"], capture_output=True,
                           text=True, check=False, env=env)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == invoke("validate", catalog, "--json").output
    assert json.loads(piped.stdout)["invalid"] == []
    refused = subprocess.run([BYOD, "validate", str(tmp_path / "none")], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.startswith("error:"), refused.stderr


def _with_stdout_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """`byod ARGS` whose stdout's reader has gone (as after `| head -1`): every write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([BYOD, *args], stdout=write, stderr=subprocess.PIPE, text=True,
                              check=False)  # fmt: skip
    finally:
        os.close(write)


def test_a_reader_that_goes_away_leaves_the_exit_code_of_the_command(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """`byod ... | head -1`: what is left to print is dropped without a word, and the exit
    code is the command's own: 0 for a search or a clean run, 1 for a run that rejected an
    input (not rich's 1 for every run, nor 3 for an "unexpected BrokenPipeError")."""
    write_raster("a_20240101.tif", ramp())
    src, catalog = tmp_path / "src", str(tmp_path / "catalog")
    where = ["--catalog", catalog, "--target", str(tmp_path / "data")]
    for args in (["--json"], []):
        done = _with_stdout_closed("ingest", str(src), *where, *args)
        assert (done.returncode, done.stderr) == (0, ""), args
    for args in (["--json"], []):
        done = _with_stdout_closed("search", catalog, *args)
        assert (done.returncode, done.stderr) == (0, ""), args
        done = _with_stdout_closed("validate", catalog, *args)
        assert (done.returncode, done.stderr) == (0, ""), args
    (src / "b_20240102.tif").write_bytes(b"not a raster")
    for args in (["--json"], []):
        done = _with_stdout_closed("ingest", str(src), *where, *args)
        assert (done.returncode, done.stderr) == (1, ""), args


def test_datetime_with_a_space_as_rfc_3339_allows_and_search_says_the_forms(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """`--datetime "2021-05-01 10:00:00"` (RFC 3339 allows a space for the `T`, and byod.yaml's
    YAML reads it) is the same instant as `2021-05-01T10:00:00`; a search period in a wrong
    form says which forms are read."""
    write_raster("a.tif", ramp())
    src, catalog = tmp_path / "src", tmp_path / "catalog"
    where = ["--catalog", str(catalog), "--target", str(tmp_path / "data")]
    result = invoke("ingest", str(src), *where, "--collection", "test",
                    "--datetime", "2021-05-01 10:00:00Z", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (item,) = item_files(catalog, "test").values()
    assert json.loads(item.read_text())["properties"]["datetime"] == "2021-05-01T10:00:00Z"
    cases = [
        ("2021-05-02 10:00", "2021-05-02T10:00:00Z"),
        ("2021-05-03T10:00:00.5+02:00", "2021-05-03T08:00:00.500000Z"),
    ]
    for given, stored in cases:
        done = invoke("ingest", str(src), *where, "--collection", "test", "--datetime", given)
        assert done.exit_code == 0, done.output
        (item,) = item_files(catalog, "test").values()
        assert json.loads(item.read_text())["properties"]["datetime"] == stored
    bad = invoke("search", str(catalog), "--datetime", "2021/05/01/x")
    assert bad.exit_code == 2
    assert "YYYY-MM-DD or RFC 3339" in bad.output


def test_a_report_path_that_is_a_folder_is_refused_before_the_run(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("a_20240101.tif", ramp())
    (tmp_path / "reports").mkdir()
    where = ["--catalog", str(tmp_path / "catalog"), "--target", str(tmp_path / "data")]
    result = invoke("ingest", str(tmp_path / "src"), *where, "--report", str(tmp_path / "reports"))
    assert result.exit_code == 2, result.output
    assert "--report" in result.output and "a folder" in result.output
    assert not (tmp_path / "catalog").exists() and not (tmp_path / "data").exists()


def test_a_report_that_would_replace_byods_files_or_an_input_is_refused(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """`--report` over the root catalog.json, into the target, or over an input or byod.yaml
    of the source is a usage error before the run (newcomer N5: each was overwritten, exit
    0); a new report file in the source, or an earlier report there, is written."""
    write_raster("a_20240101.tif", ramp())
    src, catalog, data = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    (src / "byod.yaml").write_text("title: T\n")
    where = ["--catalog", str(catalog), "--target", str(data), "--collection", "test"]
    assert invoke("ingest", str(src), *where, "-q").exit_code == 0
    before = {p: p.read_bytes() for p in (catalog / "catalog.json", src / "a_20240101.tif",
                                          src / "byod.yaml")}  # fmt: skip
    for path in (*before, data / "report.json"):
        result = invoke("ingest", str(src), *where, "--report", str(path))
        assert result.exit_code == 2, (path, result.output)
        assert "--report" in result.output
    assert {p: p.read_bytes() for p in before} == before
    assert not (data / "report.json").exists()
    for _ in range(2):  # a new report in the source; then the same file again
        done = invoke("ingest", str(src), *where, "--report", str(src / "report.json"))
        assert done.exit_code == 0, done.output
    assert json.loads((src / "report.json").read_text())["counts"]["unchanged"] == 1
