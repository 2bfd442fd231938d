"""Folders and URLs as the user types them, made what byod opens (no heavy imports: the
command line parses every location option through here)."""

from __future__ import annotations

import os
from urllib.parse import unquote

from byod.errors import ConfigurationError


def normalize_location(text: str) -> str:
    """A folder or URL as typed, made what byod opens: `~` expanded (a shell leaves alone a
    quoted `'~/x'` or `--target=~/x`), `file:///abs/path` (or file://localhost/...) the
    local path it names, percent-escapes decoded; any other URL as given.

    Raises `ConfigurationError` for an empty location (it would be the current folder), a
    `file://` URL of another host, and an `abfs(s)://container@account.dfs.core.windows.net`
    URL (byod reaches a container by the account's blob endpoint: the message gives the
    `az://container/path --azure-account account` to use instead)."""
    if not text.strip():
        raise ConfigurationError("an empty location; give a folder or a URL")
    if "://" not in text:
        return os.path.expanduser(text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        host, _, path = rest.partition("/")
        if host.lower() not in ("", "localhost"):
            raise ConfigurationError(f"{text}: a file:// URL of host {host!r}; byod reads "
                                     "local folders as file:///path or a plain path")  # fmt: skip
        return unquote("/" + path)
    if scheme in ("abfs", "abfss"):
        container, _, path = rest.partition("/")
        if "@" in container:
            name, _, host = container.partition("@")
            account = host.split(".", 1)[0]
            place = f"az://{name}/{path}".rstrip("/")
            raise ConfigurationError(f"{text}: give it as {place} --azure-account "
                                     f"{account} (byod reads a container through its blob "
                                     "endpoint)")  # fmt: skip
    return text


# What byod reads inputs from (`storage.BLOB_SCHEMES` are Azure's; `file://` is a folder).
SOURCE_SCHEMES = ("az", "abfs", "abfss", "file")
SOURCE_PLACES = ("a local folder (also file:///path) or az://container/prefix (also "
                 "abfs:// or abfss://container/prefix)")  # fmt: skip


def check_source(url: str) -> None:
    """Refuse a source byod cannot read, by its URL scheme alone (nothing is opened).

    Raises `ConfigurationError` (exit 2) naming the source and the places byod reads: a
    local folder or an Azure blob container (az://, abfs://, abfss://). `s3://`, `gs://`,
    `http(s)://` and any other scheme are refused; the folder itself is checked later."""
    if "://" not in url:
        return
    scheme = url.split("://", 1)[0].lower()
    if scheme in SOURCE_SCHEMES:
        return
    host, _, path = url.split("://", 1)[1].partition("/")
    hint = ""
    if scheme == "https" and ".blob.core." in host and path:  # an Azure blob URL
        hint = f": give it as az://{path.rstrip('/')}"
    raise ConfigurationError(
        f"{url}: byod cannot read {scheme}:// sources; it reads {SOURCE_PLACES}{hint}"
    )
