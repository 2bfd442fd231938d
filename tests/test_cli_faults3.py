"""Command-line faults found by review RB: export --out that would destroy or misplace files,
`~` left unexpanded, an empty SOURCE, file:// and abfss:// locations (README "Command line")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ramp, write_geotiff
from tests.test_cli_manners import DEV_ACCOUNT, invoke, one_error_line

BYOD = str(Path(sys.executable).with_name("byod"))
UTM = {"crs": "EPSG:32633", "transform": (10, 0, 500000, 0, -10, 5000000)}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults3")
    write_geotiff(root / "src" / "a_20240101.tif", ramp(16, 16), **UTM)
    made = invoke("ingest", str(root / "src"), "--catalog", str(root / "cat"), "--target",
                  str(root / "data"), "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.output
    return root / "cat"


# --- RB 2: export --out ------------------------------------------------------------------------


def test_overwrite_never_deletes_a_folder_export_did_not_write(
    catalog: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "precdir"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    result = invoke("export", str(catalog), "--out", str(mine), "--format", "ndjson",
                    "--overwrite")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert str(mine) in one_error_line(result)
    assert [p.name for p in mine.iterdir()] == ["thesis.docx"]
    assert (mine / "thesis.docx").read_text() == "years of work"
    # An earlier export is replaced, in either format.
    out = tmp_path / "out"
    for format_ in ("ndjson", "parquet", "ndjson"):
        done = invoke("export", str(catalog), "--out", str(out), "--format", format_,
                      "--overwrite")  # fmt: skip
        assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["collections.ndjson", "items.ndjson"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("under", [False, True], ids=["the-file", "under-a-file"])
def test_out_that_is_a_file_or_under_one_is_refused(
    catalog: Path, tmp_path: Path, under: bool, overwrite: bool
) -> None:
    a_file = tmp_path / "precious.txt"
    a_file.write_text("mine")
    out = a_file / "x" if under else a_file
    args = ["--overwrite"] if overwrite else []
    result = invoke("export", str(catalog), "--out", str(out), "--format", "ndjson", *args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(out) in line and "a file" in line
    assert a_file.is_file() and a_file.read_text() == "mine"


@pytest.mark.parametrize("url", ["s3://b/x", "az://c/x", "https://example.org/x"])
def test_out_that_is_a_url_is_refused(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("export", str(catalog), "--out", url, "--format", "parquet")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert url in line and "local folder" in line and "byod export --help" in line
    assert list(tmp_path.iterdir()) == []  # no ./s3:/b/x


def test_out_as_a_file_url_is_that_folder(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    result = invoke("export", str(catalog), "--out", out.as_uri(), "--format", "ndjson")
    assert result.exit_code == 0, result.output
    assert (out / "items.ndjson").is_file()


# --- RB 5, 6, 7: ~, empty SOURCE, file:// and abfss:// ------------------------------------------


def test_tilde_is_the_home_folder_in_every_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write_geotiff(home / "src" / "a_20240101.tif", ramp(16, 16), **UTM)
    monkeypatch.chdir(tmp_path)
    result = invoke("ingest", "~/src", "--target=~/d", "--catalog", "~/c", "--report",
                    "~/r.json", "--quiet", env={"HOME": str(home)})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (home / "c" / "catalog.json").is_file()
    assert any((home / "d").rglob("*.tif"))
    assert json.loads((home / "r.json").read_text())["rows"][0]["status"] == "ingested"
    assert not (tmp_path / "~").exists()
    exported = invoke("export", "~/c", "--out", "~/e", "--format", "ndjson",
                      env={"HOME": str(home)})  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert (home / "e" / "items.ndjson").is_file()


def test_an_empty_source_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_geotiff(tmp_path / "a_20240101.tif", ramp(16, 16), **UTM)
    monkeypatch.chdir(tmp_path)
    result = invoke("ingest", "", "--quiet")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "SOURCE" in line and "empty" in line
    assert [p.name for p in tmp_path.iterdir()] == ["a_20240101.tif"]  # no catalogs/, data/


def test_a_file_url_source_is_its_folder(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "src" / "a_20240101.tif", ramp(16, 16), **UTM)
    result = invoke("ingest", (tmp_path / "src").as_uri(), "--catalog", str(tmp_path / "cat"),
                    "--target", str(tmp_path / "data"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["input"], r["status"]) for r in rows] == [("a_20240101.tif", "ingested")]


@pytest.mark.parametrize(
    ("location", "hint"),
    [("abfss://src@devstoreaccount1.dfs.core.windows.net/in", "az://src/in --azure-account "
      "devstoreaccount1"),
     ("file://otherhost/data", "file:///path")],
)  # fmt: skip
@pytest.mark.parametrize("where", ["SOURCE", "--target", "--catalog"])
def test_locations_byod_cannot_reach_are_refused_in_one_line(
    tmp_path: Path, location: str, hint: str, where: str
) -> None:
    places = {"SOURCE": str(tmp_path / "src"), "--target": str(tmp_path / "d"),
              "--catalog": str(tmp_path / "c")}  # fmt: skip
    places[where] = location
    result = invoke("ingest", places["SOURCE"], "--target", places["--target"], "--catalog",
                    places["--catalog"], "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert location in line and hint in line and "byod ingest --help" in line


def test_help_names_every_kind_of_location() -> None:
    result = invoke("ingest", "--help", env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0
    for place in ("file:///", "az://", "abfs://"):
        assert place in result.output, place


# --- RB 8: an account without any credential ----------------------------------------------------


def test_an_account_without_credentials_is_one_line_naming_it(tmp_path: Path) -> None:
    """DefaultAzureCredential finds nothing: one line naming the account and what to set,
    exit 2, none of azure.identity's warnings. Developer credentials only (no managed
    identity probe), with an empty home (no az login)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "AZURE_TOKEN_CREDENTIALS": "dev"}  # fmt: skip
    done = subprocess.run([BYOD, "ingest", "az://cont", "--azure-account", "nosuchacctxyz",
                           "--catalog", str(tmp_path / "c"), "--target", str(tmp_path / "d"),
                           "-q"], capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no Azure credential found for storage account "
                               "'nosuchacctxyz'")  # fmt: skip
    assert "AZURE_STORAGE_CONNECTION_STRING" in lines[0] and "HTTP" not in lines[0]


# --- RB 9: usage errors in one line, in the user's words -----------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["export", "CAT", "--out", "x"], "error: byod export: missing option '--format'. Choose "
         "from: ndjson, parquet (see byod export --help)"),
        (["ingest", "SRC", "--quiet=1"], "error: byod ingest: option '--quiet' does not take a "
         "value (see byod ingest --help)"),
        (["-v", "ingest", "SRC", "--quiet=1"], "error: byod ingest: option '--quiet' does not "
         "take a value (see byod ingest --help)"),
        (["ingest", "SRC", "--cloud-rule", "zzz"], "error: byod ingest: --cloud-rule: unknown "
         "cloud rule 'zzz': use one of s2-scl, landsat-qa, fmask, binary, values:V1,V2,... or "
         "bits:B1,B2,... (see byod ingest --help)"),
        (["ingest", "SRC", "--datetime-order", "name,foo"], "error: byod ingest: "
         "--datetime-order: 'foo': input should be 'option', 'user', 'sidecar', 'tag', 'name' "
         "or 'written' (see byod ingest --help)"),
    ],
    ids=["missing-choice", "flag-value", "flag-value-after-v", "cloud-rule", "datetime-order"],
)  # fmt: skip
def test_usage_errors_name_the_option_as_typed(tmp_path: Path, args: list[str], line: str) -> None:
    write_geotiff(tmp_path / "SRC" / "a_20240101.tif", ramp(16, 16), **UTM)
    args = [str(tmp_path / a) if a in ("SRC", "CAT") else a for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert one_error_line(result) == line
    assert not (tmp_path / "catalogs").exists()


def test_a_bad_value_in_byod_yaml_names_the_file_and_its_key(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "src" / "a_20240101.tif", ramp(16, 16), **UTM)
    config = tmp_path / "src" / "byod.yaml"
    config.write_text("clouds: {rule: zzz}\ntime: {order: [name, foo]}\n")
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"),
                    "--target", str(tmp_path / "d"), "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"{config}: clouds.rule: unknown cloud rule 'zzz'" in line
    assert f"{config}: time.order: 'foo': input should be" in line
    assert "cloud_rule" not in line and "Value error" not in line and "--help" not in line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"time: {datetime: 2021}\n", ["time.datetime", "2021 is a number, not a date"]),
        (b"time: {datetime: '2021'}\n", ["time.datetime", "is a number, not a date"]),
        (b"time: {datetime: 10:00}\n", ["time.datetime", "600 is a number"]),  # YAML 1.1: 600
        (b"time: {datetime: 2021-02-30}\n", ["cannot be read", "day is out of range"]),
        (b"title: Caf\xe9 Wien\n", ["not UTF-8 text (byte 0xe9", "save it as UTF-8"]),
        ("title: Café\n".encode("utf-16"), ["not UTF-8 text"]),
        (b"title: [unclosed\n", ["cannot be read"]),
    ],
    ids=["number", "quoted-number", "sexagesimal", "no-such-day", "cp1252", "utf16", "yaml"],
)
def test_a_byod_yaml_value_that_is_no_time_or_text_is_refused(
    tmp_path: Path, content: bytes, words: list[str]
) -> None:
    # Newcomer N3: `datetime: 2021` dated every item 1970-01-01T00:33:41Z (Unix seconds), and
    # PyYAML's own ValueErrors (no such day, bytes that are not UTF-8) ended in exit 3.
    write_geotiff(tmp_path / "src" / "a.tif", ramp(16, 16), **UTM)
    config = tmp_path / "src" / "byod.yaml"
    config.write_bytes(content)
    report = tmp_path / "r.json"
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"),
                    "--target", str(tmp_path / "d"), "-q", "--report", str(report))  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"error: {config}: ") and all(w in line for w in words), line
    assert "unexpected" not in line and "\\n" not in line
    assert json.loads(report.read_text())["rows"] == []  # the report of a run that could not start
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("yaml", "args", "words"),
    [
        ("time: {datetime: 2021-05-01, order: [user, name]}\n", [], ["datetime", "'option'"]),
        ("time: {pattern: '(?P<year>\\d{4})', order: [option, tag]}\n", [], ["pattern", "'name'"]),
        ("clouds: {cover: 5, order: [mask]}\n", [], ["cover", "'option'"]),
        ("time: {order: [user, name]}\n", ["--datetime", "2021-05-01"], ["datetime", "'option'"]),
        (None, ["--cloud-cover", "5", "--cloud-order", "mask"], ["cover", "'option'"]),
        ("clouds: {rule: fmask, band: 2, order: [sidecar, option]}\n", [], ["rule", "'mask'"]),
        (None, ["--cloud-band", "3", "--cloud-order", "sidecar"], ["band", "'mask'"]),
    ],
    ids=["yaml-datetime", "yaml-pattern", "yaml-cover", "cli-over-yaml-order", "cli-cover",
         "yaml-rule", "cli-band"],
)  # fmt: skip
def test_a_value_its_order_never_reads_is_refused(
    tmp_path: Path, yaml: str | None, args: list[str], words: list[str]
) -> None:
    # Newcomer fault: `time: {datetime: X, order: [user, name]}` dropped X without a word (the
    # order's sources are the only ones tried), then advised setting the datetime it dropped.
    write_geotiff(tmp_path / "src" / "a.tif", ramp(16, 16), **UTM)
    if yaml is not None:
        (tmp_path / "src" / "byod.yaml").write_text(yaml)
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"),
                    "--target", str(tmp_path / "d"), "--quiet", *args)  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert all(w in line for w in words), line
    assert "leaves out" in line and "Traceback" not in result.output
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


# --- RB 10: sign abfss://, validate a collection.json ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["az://data/a.tif", "abfs://data/a.tif", "abfss://data/a.tif",
     "abfss://data@devstoreaccount1.dfs.core.windows.net/a.tif"],
)  # fmt: skip
def test_sign_takes_abfss_urls_like_az_urls(url: str) -> None:
    result = invoke("sign", url, env={"AZURE_STORAGE_CONNECTION_STRING": DEV_ACCOUNT})
    assert result.exit_code == 0, result.output
    signed = result.stdout.strip()
    assert signed.startswith("http://127.0.0.1:10000/devstoreaccount1/data/a.tif?")
    assert "sp=r" in signed and "sig=" in signed  # a read-only SAS (Azure's query parameters)


def test_sign_refuses_an_abfss_url_of_another_account() -> None:
    url = "abfss://data@other.dfs.core.windows.net/a.tif"
    result = invoke("sign", url, env={"AZURE_STORAGE_CONNECTION_STRING": DEV_ACCOUNT})
    assert result.exit_code == 2
    assert "devstoreaccount1" in one_error_line(result)


def test_validate_a_collection_json_names_the_root_to_give(catalog: Path) -> None:
    collection = catalog / "src" / "collection.json"
    result = invoke("validate", str(collection))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"error: {collection}: not a root catalog")
    assert f"(here: {catalog / 'catalog.json'})" in line and "collection.json/catalog" not in line


def test_a_folder_of_other_files_is_never_offered_to_overwrite(
    catalog: Path, tmp_path: Path
) -> None:
    """Without --overwrite, a folder holding a user's files is refused without suggesting
    --overwrite (which would refuse it too); an earlier export is offered it."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    refused = invoke("export", str(catalog), "--out", str(mine), "--format", "ndjson")
    assert refused.exit_code == 2
    line = one_error_line(refused)
    assert "export elsewhere" in line and "--overwrite replaces it" not in line
    out = tmp_path / "out"
    assert invoke("export", str(catalog), "--out", str(out), "--format", "ndjson").exit_code == 0
    again = invoke("export", str(catalog), "--out", str(out), "--format", "ndjson")
    assert again.exit_code == 2
    assert "--overwrite replaces it" in one_error_line(again)


# --- every edge reads a location the same way (the flows and the Python API too) ------------


def test_the_settings_model_reads_locations_as_the_command_line_does(tmp_path: Path) -> None:
    """Flow parameters and the Python API build IngestSettings without the CLI: `~`,
    file:///path, an empty location and a scheme byod cannot read are handled by the model
    (a deployment's `source: "~/uploads"` was a folder literally named `~`)."""
    from pydantic import ValidationError

    from byod.config import IngestSettings

    settings = IngestSettings(source="~/uploads", target=f"file://{tmp_path}/data",
                              catalog="~/cat")  # fmt: skip
    assert settings.source == str(Path.home() / "uploads")
    assert settings.target == f"{tmp_path}/data"
    assert settings.catalog == str(Path.home() / "cat")
    for bad, says in (("s3://bucket/x", "cannot read s3:// sources"),
                      ("", "an empty location"),
                      ("file://otherhost/x", "a file:// URL of host 'otherhost'")):  # fmt: skip
        with pytest.raises(ValidationError, match=says):
            IngestSettings(source=bad)
    assert IngestSettings(source="az://uploads/x").source == "az://uploads/x"
