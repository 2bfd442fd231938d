"""The one typed settings object of an ingest run.

Built at the edge (CLI options, flow parameters) and passed down; the library reads no
environment variables for these.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from byod.azure import AzureOptions

Compression = Literal["deflate", "zstd"]

DEFAULT_TARGET = "data"
DEFAULT_CATALOG = "catalogs"
DEFAULT_LICENSE = "other"


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
        default=8192, ge=256, description="Address-space bound per input's worker process."
    )
    max_pixels: int = Field(
        default=200_000 * 200_000, ge=1, description="Inputs claiming more pixels are rejected."
    )
    compression: Compression = "deflate"
    license: str = DEFAULT_LICENSE
    description: str | None = None
    title: str | None = None
    azure: AzureOptions | None = Field(
        default=None, description="Storage account options for az:// sources and targets."
    )

    @field_validator("datetime")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        from byod.temporal import as_utc

        return None if value is None else as_utc(value)
