"""Folders and URLs as the user types them, made what byod opens (no heavy imports: the
command line parses every location option through here)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

from byod.errors import ConfigurationError

BLOB_SCHEMES = ("az", "abfs", "abfss")  # Azure blob storage: az://container/prefix
# Azure's "Naming and Referencing Containers, Blobs, and Metadata": 3-63 characters, lower-case
# letters, digits and hyphens, starting and ending with a letter or digit, no two hyphens in a
# row; `$root`, `$web` and `$logs` are the account's own containers.
CONTAINER_NAME = re.compile(r"(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*")
CONTAINER_RULE = ("3-63 lower-case letters, digits and single hyphens, starting and ending "
                  "with a letter or digit")  # fmt: skip
SPECIAL_CONTAINERS = ("$root", "$web", "$logs")


@dataclass(frozen=True)
class Location:
    """A folder or URL as byod opens it (`parse_location`).

    `text` is the normalised location; `container` the Azure container it names (az://,
    abfs(s)://, or an https blob URL of `<account>.blob.core.*` or an emulator's
    `http://127.0.0.1:<port>/<account>/<container>`), None for a local folder or another URL."""

    text: str
    container: str | None = None

    @property
    def is_blob(self) -> bool:
        """An az://, abfs:// or abfss:// URL (the stores' own scheme)."""
        return is_blob_url(self.text)

    @property
    def is_local(self) -> bool:
        """A path on this machine (no URL scheme)."""
        return "://" not in self.text


def is_blob_url(url: str) -> bool:
    """Whether `url` is an az://, abfs:// or abfss:// URL (case of the scheme ignored)."""
    return "://" in url and url.split("://", 1)[0].lower() in BLOB_SCHEMES


def parse_location(text: str) -> Location:
    """`normalize_location(text)` and the Azure container it names (nothing is opened).

    Raises `ConfigurationError` as `normalize_location` does."""
    where = normalize_location(text)
    return Location(where, container_of(where))


def check_container(url: str) -> None:
    """Refuse a location whose Azure container name Azure would refuse (`CONTAINER_RULE`),
    before anything is opened: `ConfigurationError` naming the location and the rule."""
    container = container_of(url)
    if container is not None and not (
        CONTAINER_NAME.fullmatch(container) or container in SPECIAL_CONTAINERS
    ):
        raise ConfigurationError(f"{url}: container name {container!r} is not one Azure "
                                 f"allows ({CONTAINER_RULE})")  # fmt: skip


def container_of(url: str) -> str | None:
    """The Azure container a normalised location names, else None (a local path, another
    host's URL)."""
    if "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    if scheme.lower() in BLOB_SCHEMES:
        return rest.partition("/")[0].partition("@")[0]
    if scheme.lower() not in ("http", "https"):
        return None
    host, _, path = rest.partition("/")
    parts = path.split("?", 1)[0].split("/")
    if ".blob.core." in host.lower():
        return parts[0] if parts[0] else None
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 else host.strip("[]")
    try:  # an emulator's path-style URL: /<account>/<container>/...
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    return parts[1] if loopback and len(parts) > 1 and parts[1] else None


def normalize_location(text: str) -> str:
    """A folder or URL as typed, made what byod opens: `~` expanded (a shell leaves alone a
    quoted `'~/x'` or `--target=~/x`), `file:///abs/path` (or file://localhost/...) the
    local path it names, percent-escapes decoded; any other URL as given.

    Raises `ConfigurationError` for an empty location (it would be the current folder), a
    `file://` URL of another host, an `abfs(s)://container@account.dfs.core.windows.net`
    URL (byod reaches a container by the account's blob endpoint: the message gives the
    `az://container/path --azure-account account` to use instead), and an Azure container
    name Azure refuses (`check_container`)."""
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
    check_container(text)
    return text


def source_name(location: str) -> str:
    """The name a (normalised) source goes by, for the default collection id and the
    collection's description alike: a folder's own name (`.` and `..` resolved, links
    followed: `byod ingest .` in `in/` is `in`), or the last part of a URL's path."""
    if "://" not in location:
        return os.path.basename(os.path.realpath(location)) or location
    return location.rstrip("/").rsplit("/", 1)[-1] or location


# What byod reads inputs from (`BLOB_SCHEMES` are Azure's; `file://` is a folder).
SOURCE_SCHEMES = (*BLOB_SCHEMES, "file")
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
