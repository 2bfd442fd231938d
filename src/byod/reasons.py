"""Why an input was rejected: one table of reason codes, used by the report, the CLI and tests.

Rejection is data, not an exception that ends the run (ARCHITECTURE.md): each rejected input
becomes a report row carrying one of these codes and a sentence naming the file.
"""

from __future__ import annotations

from enum import StrEnum

from byod.errors import RejectedInput

__all__ = ["Reason", "RejectedInput"]  # RejectedInput lives in byod.errors


class Reason(StrEnum):
    """Reason codes for a rejected input. The value is what the JSON report carries."""

    EMPTY_FILE = "empty_file"
    NOT_A_FILE = "not_a_file"
    SYMLINK_LOOP = "symlink_loop"
    # A link, VRT, sidecar or GDAL name that reaches outside the source folder (untrusted.py).
    OUTSIDE_SOURCE = "outside_source"
    BAD_NAME = "bad_name"  # a file name that is not valid UTF-8
    UNREADABLE = "unreadable"
    NOT_A_RASTER = "not_a_raster"
    TRUNCATED = "truncated"
    NOT_GEOREFERENCED = "not_georeferenced"
    UNKNOWN_CRS = "unknown_crs"
    TOO_LARGE = "too_large"
    NO_DATETIME = "no_datetime"
    # A cell of the folder's byod-metadata.csv row for the input that cannot be used.
    BAD_METADATA = "bad_metadata"
    NO_VALID_DATA = "no_valid_data"
    CONVERSION_FAILED = "conversion_failed"
    STORAGE_FAILED = "storage_failed"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    CRASHED = "crashed"
