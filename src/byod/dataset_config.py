"""The per-dataset configuration file (`byod.yaml` in the source folder, or `--config FILE`),
so a dataset is ingested the same way every time.

    title: Vienna summer composites
    description: Sentinel-2 L2A, cloud-masked by the lab's pipeline.
    license: CC-BY-4.0
    providers: [{name: TU Wien, roles: [producer], url: https://www.tuwien.at}]
    keywords: [vienna, ndvi]
    datetime: {pattern: 'doy(?P<year>\\d{4})', order: [sidecar, name], require: true}
    clouds: {rule: fmask, band: 2, cover: 10, order: [mask, sidecar]}
    group: {pattern: '(?P<scene>.+)_(?P<band>B\\d+)\\.tif$'}

Precedence: options given on the command line (or flow parameters), then this file, then
byod's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

CONFIG_NAMES = ("byod.yaml", "byod.yml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    name: str
    roles: list[str] = []
    url: str | None = None
    description: str | None = None


class _Time(_Strict):
    pattern: str | None = None
    order: list[str] | None = None
    require: bool | None = None  # reject time-less inputs (no_datetime)


class _Clouds(_Strict):
    rule: str | None = None
    band: int | None = None
    cover: float | None = None
    order: list[str] | None = None


class _Group(_Strict):
    pattern: str | None = None


class DatasetConfig(_Strict):
    title: str | None = None
    description: str | None = None
    license: str | None = None
    providers: list[Provider] = []
    keywords: list[str] = []
    datetime: _Time = _Time()
    clouds: _Clouds = _Clouds()
    group: _Group = _Group()

    def as_settings(self) -> dict[str, Any]:
        """The IngestSettings fields this file sets (unset ones are left out)."""
        values: dict[str, Any] = {
            "title": self.title, "description": self.description, "license": self.license,
            "providers": [p.model_dump(exclude_none=True) for p in self.providers] or None,
            "keywords": self.keywords or None,
            "datetime_pattern": self.datetime.pattern,
            "datetime_order": tuple(self.datetime.order) if self.datetime.order else None,
            "require_datetime": self.datetime.require,
            "cloud_rule": self.clouds.rule, "cloud_band": self.clouds.band,
            "cloud_cover": self.clouds.cover,
            "cloud_order": tuple(self.clouds.order) if self.clouds.order else None,
            "group_pattern": self.group.pattern,
        }  # fmt: skip
        return {k: v for k, v in values.items() if v is not None}


# Where the file sets each IngestSettings field (`as_settings`), to name it in errors.
SETTING_KEYS = {
    "datetime_pattern": "datetime.pattern", "datetime_order": "datetime.order",
    "require_datetime": "datetime.require", "cloud_rule": "clouds.rule",
    "cloud_band": "clouds.band", "cloud_cover": "clouds.cover", "cloud_order": "clouds.order",
    "group_pattern": "group.pattern",
}  # fmt: skip


class DatasetConfigError(ValueError):
    """The configuration file cannot be read or says something byod does not know."""


def find_config(source: str, explicit: str | Path | None) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetConfigError(f"{path}: no such configuration file")
        return path
    if "://" in source:
        return None
    return next((Path(source, n) for n in CONFIG_NAMES if Path(source, n).is_file()), None)


def load_config(path: Path) -> DatasetConfig:
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetConfigError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetConfigError(f"{path}: must be a mapping of settings")
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise DatasetConfigError(f"{path}: {problems}") from None
