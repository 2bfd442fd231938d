"""The per-dataset configuration file (`byod.yaml` in the source folder, or `--config FILE`),
so a dataset is ingested the same way every time.

    title: Vienna summer composites
    description: Sentinel-2 L2A, cloud-masked by the lab's pipeline.
    license: CC-BY-4.0
    providers: [{name: TU Wien, roles: [producer], url: https://www.tuwien.at}]
    keywords: [vienna, ndvi]
    time: {pattern: 'doy(?P<year>\\d{4})', order: [sidecar, name], require: true}
    clouds: {rule: fmask, band: 2, cover: 10, order: [mask, sidecar]}
    group: {pattern: '(?P<scene>.+)_(?P<band>B\\d+)\\.tif$'}

Precedence: options given on the command line (or flow parameters), then this file, then
byod's defaults. The `time:` and `clouds:` sections are IngestSettings' own sub-models
(`TimeOptions`, `CloudOptions`): the same keys, defaults and checks as `settings.time` and
`settings.clouds`; `datetime:` is still read as the former name of `time:` (not beside it).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from byod.errors import ConfigurationError
from byod.keys import CONFIG_NAMES
from byod.options import CloudOptions, TimeOptions, setting_problems, spdx_license


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    """A STAC Provider object (STAC 1.1.0 Collection `providers`): roles among licensor,
    producer, processor, host."""

    name: str
    roles: list[str] = []
    url: str | None = None
    description: str | None = None


class _Group(_Strict):
    pattern: str | None = None


class DatasetConfig(_Strict):
    """A source folder's `byod.yaml`: collection fields and the time, cloud and grouping
    sections of the settings (unknown keys refused)."""

    title: str | None = None
    description: str | None = None
    license: str | None = None
    providers: list[Provider] = []
    keywords: list[str] = []
    # The settings' own sections; `datetime:` was the name of `time:` before it was one.
    time: TimeOptions = Field(
        default=TimeOptions(), validation_alias=AliasChoices("time", "datetime")
    )
    clouds: CloudOptions = CloudOptions()
    group: _Group = _Group()

    @field_validator("license")
    @classmethod
    def _license(cls, value: str | None) -> str | None:
        return None if value is None else spdx_license(value)  # named with the file's path

    @model_validator(mode="before")
    @classmethod
    def _one_time_section(cls, data: Any) -> Any:
        # pydantic takes the first alias found and calls the other an extra input.
        if isinstance(data, dict) and "time" in data and "datetime" in data:
            raise ValueError("'datetime:' is the former name of 'time:' and only one may be "
                             "given: move its keys under 'time:'")  # fmt: skip
        return data

    def as_settings(self) -> dict[str, Any]:
        """The IngestSettings fields this file sets (unset and null ones are left out)."""
        values = self.model_dump(exclude_unset=True, exclude_none=True,
                                 exclude={"providers", "keywords", "group"})  # fmt: skip
        if self.providers:
            values["providers"] = [p.model_dump(exclude_none=True) for p in self.providers]
        if self.keywords:
            values["keywords"] = self.keywords
        if self.group.pattern is not None:
            values["group_pattern"] = self.group.pattern
        return values


# Where the file sets an IngestSettings field whose path (`clouds.rule`) is not its key.
SETTING_KEYS = {"group_pattern": "group.pattern"}


class DatasetConfigError(ConfigurationError):
    """The configuration file cannot be read or says something byod does not know."""


def find_config(source: str, explicit: str | Path | None) -> Path | None:
    """The configuration file of a run: `explicit` (DatasetConfigError when it is no
    file), else one of `CONFIG_NAMES` in a local `source` folder, else None (a blob source
    has none)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetConfigError(f"{path}: no such configuration file")
        return path
    if "://" in source:
        return None
    return next((Path(source, n) for n in CONFIG_NAMES if Path(source, n).is_file()), None)


def load_config(path: Path, run_settings: Collection[str] = ()) -> DatasetConfig:
    """Read and check a YAML configuration file. Raises DatasetConfigError (a ValueError)
    naming the file and each bad key when it cannot be read, is no mapping, or does not
    validate. `run_settings` are the settings of a run that are no key of the file
    (`workers`): one of them in the file is said to belong on the command line."""
    import yaml  # here: a run without byod.yaml imports no YAML parser (issue 13: no-op)

    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except UnicodeDecodeError as exc:  # a UnicodeDecodeError is a ValueError: first
        raise DatasetConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                                 f"at offset {exc.start}): save it as UTF-8") from None  # fmt: skip
    except (OSError, yaml.YAMLError, ValueError) as exc:
        # PyYAML's own checks raise ValueError too: `2021-02-30` as a timestamp.
        raise DatasetConfigError(f"{path}: cannot be read ({' '.join(str(exc).split())})"
                                 ) from None  # fmt: skip
    if not isinstance(data, dict):
        raise DatasetConfigError(f"{path}: must be a mapping of settings")
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:  # `FILE: clouds.rule: unknown cloud rule 'zzz': ...`
        problems = []
        for key, text in setting_problems(exc, DatasetConfig):
            if key in run_settings and key not in DatasetConfig.model_fields:  # `workers: 2`
                text = ("a setting of the run, not of the dataset: give it on the command "
                        "line (byod ingest --help) or in the flow's settings")  # fmt: skip
            problems.append(f"{path}: {key}: {text}" if key else f"{path}: {text}")
        raise DatasetConfigError("; ".join(problems)) from None
