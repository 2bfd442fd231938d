"""The one typed settings object of an ingest run.

Built at the edge (CLI options, flow parameters) and passed down; the library reads no
environment variables for these.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from byod.azure import AzureOptions
from byod.locations import check_source, normalize_location

Compression = Literal["deflate", "zstd"]
CloudSource = Literal["option", "user", "mask", "sidecar", "imagery"]
TimeSource = Literal["option", "user", "sidecar", "tag", "name", "written"]

DEFAULT_TARGET = "data"
DEFAULT_CATALOG = "catalogs"
DEFAULT_LICENSE = "other"
_TIME_GROUPS = {"year", "month", "day", "hour", "minute", "second"}


# The fixed per-input temp disk cap (issue 11): a decompression or upsampling bomb is
# refused whatever the machine's free space; --disk-budget raises it.
DEFAULT_DISK_BUDGET_MB = 16 * 1024


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class IngestSettings(BaseModel):
    """Everything that decides what an ingest run does. Defaults are the library's and the CLI's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    collection: str | None = Field(
        default=None, description="Collection id; default: a slug of the source folder's name."
    )
    target: str = Field(default=DEFAULT_TARGET, description="Where COGs are stored.")
    catalog: str = Field(default=DEFAULT_CATALOG, description="Root of the static catalog.")
    datetime: dt.datetime | None = Field(
        default=None, description="Acquisition time stamped on every item (UTC if naive)."
    )
    workers: int = Field(default_factory=default_workers, ge=1)
    timeout_s: float = Field(default=1800.0, gt=0, description="Wall-clock bound per input.")
    max_memory_mb: int = Field(
        # A worker starts at about 270 MB of address space (Python, GDAL, PROJ mapped).
        default=8192,
        ge=512,
        description="Address-space bound per input's worker process.",
    )
    max_pixels: int = Field(
        default=200_000 * 200_000, ge=1, description="Inputs claiming more pixels are rejected."
    )
    disk_budget_mb: int | None = Field(
        default=DEFAULT_DISK_BUDGET_MB,
        ge=1,
        description="Temp disk space (MB) one input's conversion may need at its peak (staged "
        "copies, rio-cogeo's uncompressed temp file and the COG, with overviews); larger "
        "inputs are rejected as too_large before conversion. Never more than the temp "
        "folder's free space less 1 GB, divided by the workers. None: that share alone.",
    )
    compression: Compression = "deflate"
    superseded_grace_s: float = Field(
        default_factory=lambda: float(os.environ.get("BYOD_SUPERSEDED_GRACE_S", "600")),
        ge=0,
        description="Seconds superseded files (old COGs, items, indexes) stay readable after "
        "a switch, for readers of the previous collection.json (env BYOD_SUPERSEDED_GRACE_S).",
    )
    prune: bool = Field(
        default=False,
        description="Remove the items (and, after the grace period, the COGs) of inputs no "
        "longer in the source; never when parts of the source could not be listed.",
    )
    publish_every_inputs: int = Field(
        # Each progress publish rewrites the months it touches, whose size grows with the
        # run: 200 cost 157 s of a 507 s run of 5,000 small inputs in one month (issue 14).
        default=1000,
        ge=1,
        description="Publish what is stored every this many converted inputs while the run "
        "goes on, so a crash or kill loses at most that many.",
    )
    publish_every_s: float = Field(
        default=300.0,
        gt=0,
        description="Publish what is stored at least every this many seconds while the run "
        "goes on (checked as each input finishes).",
    )
    license: str = DEFAULT_LICENSE
    description: str | None = None
    title: str | None = None
    cloud_cover: float | None = Field(
        default=None, ge=0, le=100, description="Cloud cover (percent) of every item."
    )
    cloud_rule: str | None = Field(
        default=None,
        description="How to read cloud masks: s2-scl, landsat-qa, fmask, binary, "
        "values:V,... or bits:B,...; default: by the mask's name.",
    )
    cloud_band: int | None = Field(
        default=None, ge=1, description="Band of each input that is its cloud mask."
    )
    cloud_order: tuple[CloudSource, ...] = ("option", "user", "mask", "sidecar", "imagery")
    datetime_pattern: str | None = Field(
        default=None,
        description="Regex with named groups year, month, day, hour, minute, second, "
        "tried on file and folder names before the built-in patterns.",
    )
    datetime_order: tuple[TimeSource, ...] = ("option", "user", "sidecar", "tag", "name", "written")
    require_datetime: bool = Field(
        default=False,
        description="Reject inputs with no acquisition time (no_datetime) instead of ingesting "
        "them with datetime null and the period 'acquired up to when first ingested'.",
    )
    group_pattern: str | None = Field(
        default=None,
        description="Regex with named groups scene and band, matched on each input's path: "
        "files of one scene become one item with an asset per band.",
    )
    providers: list[dict[str, Any]] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    config_file: str | None = Field(default=None, description="Where dataset settings came from.")
    azure: AzureOptions | None = Field(
        default=None, description="Storage account options for az:// sources and targets."
    )

    @field_validator("source", "target", "catalog", mode="before")
    @classmethod
    def _location(cls, value: Any, info: ValidationInfo) -> Any:
        # Every edge (CLI, flow parameters, Python API) gets the same reading of a location:
        # `~` expanded, file:///path a path, empty refused; a source of a scheme byod
        # cannot read refused before anything is opened.
        if not isinstance(value, str):
            return value
        value = normalize_location(value)
        if info.field_name == "source":
            check_source(value)
        return value

    @field_validator("cloud_rule")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        from byod.clouds import parse_rule

        if value is not None:
            parse_rule(value)  # raises with the valid choices named
        return value

    @field_validator("datetime_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return _named_groups(value, required={"year"}, allowed=_TIME_GROUPS)

    @field_validator("group_pattern")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return _named_groups(value, required={"scene", "band"}, allowed=None)

    @field_validator("datetime")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        from byod.temporal import as_utc

        return None if value is None else as_utc(value)


def _named_groups(value: str | None, required: set[str], allowed: set[str] | None) -> str | None:
    """A regular expression with the named groups a rule needs (and no others, if limited)."""
    if value is None:
        return None
    try:
        groups = set(re.compile(value).groupindex)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if not required <= groups or (allowed is not None and not groups <= allowed):
        limit = f" and only these: {sorted(allowed)}" if allowed else ""
        raise ValueError(f"needs the named groups {sorted(required)}{limit}")
    return value


def build_settings(
    source: str, options: dict[str, Any], config_path: str | None = None
) -> IngestSettings:
    """Settings from the options given (CLI or flow), over the dataset's configuration file
    (`byod.yaml` in the source folder, or `config_path`), over the defaults."""
    from byod.dataset_config import find_config, load_config

    path = find_config(source, config_path)
    from_file = load_config(path).as_settings() if path is not None else {}
    merged = {**from_file, **options, "source": source}
    if path is not None:
        merged["config_file"] = str(path)
    return IngestSettings(**merged)
