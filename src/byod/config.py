"""The one typed settings object of an ingest run.

Built at the edge (CLI options, flow parameters) and passed down; the library reads no
environment variables for these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from byod.azure import AzureOptions
from byod.locations import SOURCE_PLACES, check_source, normalize_location
from byod.options import (
    COMMAND_LINE,
    READ_BY,
    CloudOptions,
    TimeOptions,
    named_groups,
    spdx_license,
)

Compression = Literal["deflate", "zstd"]

DEFAULT_TARGET = "data"
DEFAULT_CATALOG = "catalogs"
DEFAULT_LICENSE = "other"


# The fixed per-input temp disk cap (issue 11): a decompression or upsampling bomb is
# refused whatever the machine's free space; --disk-budget raises it.
DEFAULT_DISK_BUDGET_MB = 16 * 1024


# The least --memory-budget: byod's tree with one conversion, as byod.memory models it
# (`tree_mb(1)`: 280 MB for byod, 200 MB a worker, GDAL's 256 MB cache); a smaller budget
# could not be kept. A constant here, where the CLI reads it without importing GDAL.
MIN_MEMORY_BUDGET_MB = 736


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class IngestSettings(BaseModel):
    """Everything that decides what an ingest run does. Defaults are the library's and the CLI's.

    Each field's default, bounds (ge/gt/le) and description are also `byod ingest`'s option's
    (`cli._setting`) and the Prefect form's: a description reads as the option's help, in
    the units the option takes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description=f"Rasters to ingest, walked recursively: {SOURCE_PLACES}.")
    collection: str | None = Field(
        default=None, description="Collection id; default: a slug of the source folder's name."
    )
    target: str = Field(
        default=DEFAULT_TARGET, description=f"Where COGs are stored: {SOURCE_PLACES}."
    )
    catalog: str = Field(
        default=DEFAULT_CATALOG, description=f"Root of the STAC catalog: {SOURCE_PLACES}."
    )
    time: TimeOptions = Field(
        default=TimeOptions(),
        description="When each input was acquired (byod.yaml's `time:` section).",
    )
    clouds: CloudOptions = Field(
        default=CloudOptions(),
        description="How cloud cover is found (byod.yaml's `clouds:` section).",
    )
    workers: int = Field(
        default_factory=default_workers,
        ge=1,
        description="Inputs converted at once, one worker process each; default: the "
        "machine's cores.",
    )
    timeout_s: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds one input may take before it is stopped and rejected.",
    )
    max_memory_mb: int = Field(
        # A worker starts at about 270 MB of address space (Python, GDAL, PROJ mapped).
        default=8192,
        ge=512,
        description="MB of address space one input's worker process may use.",
    )
    memory_budget_mb: int = Field(
        # Hub servers have 2-4 GB, shared with the notebook (issue 14): 1 GB for the tree.
        default=1024,
        ge=MIN_MEMORY_BUDGET_MB,
        description="MB of memory the whole run may use (its processes and workers "
        "together); fewer conversions run at once than --workers when they would not fit.",
    )
    max_pixels: int = Field(
        default=200_000 * 200_000,
        ge=1,
        description="Reject inputs whose header claims more pixels (width x height) than "
        "this, before they are read.",
    )
    disk_budget_mb: int | None = Field(
        default=DEFAULT_DISK_BUDGET_MB,
        ge=1,
        description="MB of temp disk one input's conversion may need at its peak (staged "
        "copies, rio-cogeo's uncompressed temp file and the COG, with overviews); larger "
        "inputs are rejected as too_large before conversion. Never more than (free temp "
        "space - 1 GB) / workers; none (null in byod.yaml or the flow): that share alone.",
    )
    compression: Compression = Field(
        default="deflate",
        description="COG compression (zstd: faster, smaller; deflate: read everywhere).",
    )
    superseded_grace_s: float = Field(
        default_factory=lambda: float(os.environ.get("BYOD_SUPERSEDED_GRACE_S", "600")),
        ge=0,
        description="Seconds superseded files (old COGs, items, indexes) stay readable after "
        "a switch, for readers of the previous collection.json (env BYOD_SUPERSEDED_GRACE_S).",
    )
    prune: bool = Field(
        default=False,
        description="Remove the items of inputs no longer in the source (their COGs after "
        "the grace period); skipped when parts of the source could not be listed.",
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
    license: str = Field(default=DEFAULT_LICENSE, description="SPDX license id of the collection.")
    description: str | None = Field(default=None, description="Collection description.")
    title: str | None = Field(default=None, description="Collection title.")
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

    @field_validator("group_pattern")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return named_groups(value, required={"scene", "band"}, allowed=None)

    @field_validator("license")
    @classmethod
    def _license(cls, value: str) -> str:
        # Refused here, not by `byod validate` after the catalog is written (`CC BY 4.0`).
        return spdx_license(value)


def build_settings(
    source: str, options: dict[str, Any], config_path: str | None = None
) -> IngestSettings:
    """Settings from the options given (CLI or flow), over the dataset's configuration file
    (`byod.yaml` in the source folder, or `config_path`), over the defaults.

    Sections (`time`, `clouds`, `azure`) merge field by field: `clouds: {rule: ...}` given
    keeps the file's `clouds.band`; a sub-model given counts only its fields set
    (pydantic's `model_fields_set`), as the flow passes them. Raises pydantic's
    ValidationError (see `options.setting_problems`) or DatasetConfigError."""
    from byod.dataset_config import find_config, load_config

    path = find_config(source, config_path)
    from_file: dict[str, Any] = {}
    if path is not None:  # a run's own setting in the file (`workers:`) is named as one
        from_file = load_config(path, IngestSettings.model_fields).as_settings()
    merged = _merged(from_file, {**options, "source": source})
    if path is not None:
        merged["config_file"] = str(path)
    _refuse_split_orders(from_file, options, path)
    return IngestSettings(**merged)


_SECTIONS: dict[str, type[BaseModel]] = {"time": TimeOptions, "clouds": CloudOptions}


def _refuse_split_orders(
    from_file: dict[str, Any], options: dict[str, Any], path: Path | None
) -> None:
    """Refuse a value and the order that leaves out its source (`options.READ_BY`) when
    either was given (command line, flow) rather than read from the file `path`:
    `--datetime` with the file's `time: {order: [sidecar, name]}`. The model would blame the
    section; this names each where it came from and says what to change in each place.
    Raises a ValidationError on the key given (`time.datetime`, else `time.order`), which
    the CLI names as its option."""
    from pydantic_core import InitErrorDetails

    errors: list[InitErrorDetails] = []
    for section, read_by in READ_BY.items():
        given = options.get(section) or {}
        if isinstance(given, BaseModel):
            given = given.model_dump(exclude_unset=True)
        filed = from_file.get(section) or {}
        order = given.get("order", filed.get("order"))
        if order is None:  # the default order reads every value
            continue
        try:
            _SECTIONS[section](order=order)
        except ValidationError:
            continue  # an order wrong in itself: the model says how
        for name, source in read_by.items():
            value = given.get(name, filed.get(name))
            if value is None or source in order or (name not in given and "order" not in given):
                continue  # read, or both the file's (load_config refused that)
            text = _split_order_text(section, name, source, tuple(order), given, path)
            errors.append({"type": "value_error", "loc": (section, name if name in given
                           else "order"), "input": value, "ctx": {"error": text}})  # fmt: skip
    if errors:
        raise ValidationError.from_exception_data(IngestSettings.__name__, errors)


def _split_order_text(
    section: str, name: str, source: str, order: tuple[str, ...], given: dict[str, Any],
    path: Path | None,
) -> str:  # fmt: skip
    """What `_refuse_split_orders` says of the key given: where the other one came from, and
    the order with the missing source first as the one to give."""
    listed, fixed = ", ".join(order), ",".join((source, *order))
    option = COMMAND_LINE[f"{section}.order"]
    if name in given and "order" not in given:  # `--datetime` over the file's `time.order`
        return (f"given, but {section}.order in {path} ({listed}) leaves out '{source}', the "
                f"source that reads it: add '{source}' to {section}.order in {path}, or give "
                f"the order with it: {option} {fixed}")  # fmt: skip
    if name in given:  # both given: the model's own refusal, named as given
        return (f"given, but the order given ({listed}) leaves out '{source}', the source "
                f"that reads it: add it ({option} {fixed}) or leave "
                f"{COMMAND_LINE[f'{section}.{name}']} out")  # fmt: skip
    return (f"({listed}) leaves out '{source}', the source that reads {section}.{name} in "
            f"{path}: give {option} {fixed}, or remove {section}.{name} from {path}")  # fmt: skip


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(out.get(key), dict):
            if isinstance(value, BaseModel):
                value = value.model_dump(exclude_unset=True)
            if isinstance(value, dict):
                value = _merged(out[key], value)
        out[key] = value
    return out


def setting_paths(model: type[BaseModel] = IngestSettings, prefix: str = "") -> list[str]:
    """Every leaf field of a settings model, a section's fields as dotted paths
    (`clouds.rule`, `azure.region`): the names the edges map to options and keys."""
    paths = []
    for name, info in model.model_fields.items():
        nested = [a for a in get_args(info.annotation) or [info.annotation]
                  if isinstance(a, type) and issubclass(a, BaseModel)]  # fmt: skip
        paths += setting_paths(nested[0], f"{prefix}{name}.") if nested else [prefix + name]
    return paths
