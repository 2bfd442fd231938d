"""Credentials order and the region guard: decisions over plain values, plus the CLI's
refusal (exit 2, nothing written) before any request leaves the machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from byod.azure import AzureAccess, AzureConfigError, AzureOptions, check_region, resolve_access
from byod.cli import app
from tests.conftest import WriteRaster, ramp

CONN = ("DefaultEndpointsProtocol=https;AccountName=envacct;AccountKey=c2VjcmV0;"
        "EndpointSuffix=core.windows.net")  # fmt: skip
REAL = AzureAccess("acct", "https://acct.blob.core.windows.net", "account_key", account_key="k")
EMULATOR = AzureAccess("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1", "cs")


def test_explicit_options_come_first() -> None:
    options = AzureOptions(account_name="optacct", account_key=SecretStr("optkey"))
    access = resolve_access(options, {"AZURE_STORAGE_CONNECTION_STRING": CONN})
    assert (access.account_name, access.how, access.account_key) == ("optacct", "account_key",
                                                                     "optkey")  # fmt: skip


def test_environment_order() -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": CONN, "AZURE_STORAGE_ACCOUNT_NAME": "other",
           "AZURE_STORAGE_KEY": "k2"}  # fmt: skip
    access = resolve_access(None, env)
    assert access.how == "env:AZURE_STORAGE_CONNECTION_STRING"
    assert access.account_url == "https://envacct.blob.core.windows.net"
    del env["AZURE_STORAGE_CONNECTION_STRING"]
    assert resolve_access(None, env).how == "account_key"
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "other", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=x"}
    access = resolve_access(None, env)
    assert (access.how, access.sas_token) == ("sas_token", "sv=1&sig=x")


def test_no_credentials_is_a_clear_error() -> None:
    with pytest.raises(AzureConfigError, match="no Azure credentials"):
        resolve_access(None, {})


def test_secrets_stay_out_of_reprs() -> None:
    access = resolve_access(None, {"AZURE_STORAGE_CONNECTION_STRING": CONN})
    options = AzureOptions(account_key=SecretStr("topsecret"))
    assert "c2VjcmV0" not in repr(access) and "topsecret" not in repr(options)


@pytest.mark.parametrize(
    ("access", "region", "lookup", "allowed"),
    [
        (EMULATOR, None, None, True),
        (REAL, None, None, False),
        (REAL, "northeurope", None, False),
        (REAL, "westeurope", None, True),
        (REAL, "West Europe", None, True),
        (REAL, "westeurope", lambda name: "westeurope", True),
        (REAL, "westeurope", lambda name: "eastus", False),
        (REAL, "westeurope", lambda name: None, True),  # account not visible to ARM: declared
    ],
)
def test_region_guard(access: AzureAccess, region: str | None, lookup: object,
                      allowed: bool) -> None:  # fmt: skip
    decision = check_region(access, AzureOptions(region=region), lookup)  # type: ignore[arg-type]
    assert decision.allowed is allowed
    assert not decision.overridden


def test_region_override_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    decision = check_region(REAL, AzureOptions(region="eastus", allow_any_region=True))
    assert decision.allowed and decision.overridden
    assert "OVERRIDDEN" in decision.message and "REGION GUARD OVERRIDDEN" in caplog.text


def test_cli_refuses_a_non_westeurope_target(
    tmp_path: Path, write_raster: WriteRaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_raster("a_20240101.tif", ramp())
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "faraway")
    monkeypatch.setenv("AZURE_STORAGE_KEY", "c2VjcmV0")
    catalog = tmp_path / "catalog"
    result = CliRunner().invoke(app, [
        "ingest", str(tmp_path / "src"), "--target", "az://cogs", "--catalog", str(catalog),
        "--azure-region", "eastus",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "westeurope" in result.output and "nothing was written" in result.output
    assert not catalog.exists()


def test_account_from_a_sas_connection_string_and_loopback_only() -> None:
    conn = ("BlobEndpoint=https://realacct.blob.core.windows.net/;"
            "SharedAccessSignature=sv=2024&sig=abc")  # fmt: skip
    access = resolve_access(None, {"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert access.account_name == "realacct" and not access.is_emulator
    emulator = resolve_access(None, {"AZURE_STORAGE_CONNECTION_STRING":
        "AccountKey=eA==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"})  # fmt: skip
    assert emulator.account_name == "devstoreaccount1" and emulator.is_emulator
    fake = AzureAccess("x", "https://127.example.com", "cs")
    assert not fake.is_emulator
    assert not check_region(fake, AzureOptions()).allowed


def test_verbose_logging_keeps_urllib3_and_azure_quiet() -> None:
    import logging

    CliRunner().invoke(app, ["-vv", "validate", "/nonexistent"])
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("azure").getEffectiveLevel() >= logging.WARNING
