"""Cloud, shadow and snow fractions from classification or bit masks. Pure.

A rule says which pixel values (or QA bits) are cloud, shadow, snow and no data; counting is
done block by block by the caller (`count`, then `CloudCounts.__add__`), so a full-resolution
mask of any size needs the memory of one block. The percentages are of the valid pixels
(no data and fill excluded), as the producers compute their scene values.

The presets follow the producers' own definitions, so a full scene's value matches the one
in its metadata:

- `landsat-qa`, Landsat Collection 2 QA_PIXEL (USGS, Landsat 8-9 Collection 2 Level-2
  Science Product Guide, LSDS-1619, and Landsat 4-7 guide LSDS-1618, "Pixel Quality
  Assessment Band"): bit 0 fill, 1 dilated cloud, 2 cirrus (high confidence), 3 cloud (high
  confidence), 4 cloud shadow, 5 snow. The scene's MTL `CLOUD_COVER` is CFMask's cloud
  class: the cloud bit alone. Dilated cloud is a buffer of a few pixels around the clouds
  (the guide's "clear" bit 6 is defined as neither cloud nor dilated cloud set: two
  different things), and the cirrus bit is the separate band-9 (1.38 um) high-confidence
  test: CFMask already uses the cirrus band in its own cloud test, so cirrus that CFMask
  calls cloud is in bit 3, and USGS does not add bit 2 to CLOUD_COVER. Counting bits 1-3
  gave 58.56% on a scene whose MTL says 54.65% (bit 3 alone: 54.67%, PITFALLS.md).
- `s2-scl`, Sentinel-2 L2A Scene Classification (ESA, Sentinel-2 Level-2A Product Format
  Specification and Sen2Cor Software Release Note / Products Specification Document): the
  product's `CLOUDY_PIXEL_PERCENTAGE` / `Cloud_Coverage_Assessment` is the sum of
  `MEDIUM_PROBA_CLOUDS_PERCENTAGE` (class 8), `HIGH_PROBA_CLOUDS_PERCENTAGE` (9) and
  `THIN_CIRRUS_PERCENTAGE` (10); 3 is cloud shadow, 11 snow, 0 no data.
- `fmask` (Zhu & Woodcock's Fmask output): 0 clear land, 1 clear water, 2 cloud shadow,
  3 snow, 4 cloud, 255 fill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from byod.errors import ConfigurationError


@dataclass(frozen=True)
class CloudRule:
    """Which values (kind="values") or bit positions (kind="bits", 0 = least significant)
    of a mask band mean cloud, shadow, snow and no data. A pixel is in a class when its
    value is one of the values, or when any of the bits is set."""

    name: str
    kind: str  # "values" or "bits"
    cloud: frozenset[int]
    shadow: frozenset[int] = frozenset()
    snow: frozenset[int] = frozenset()
    nodata: frozenset[int] = frozenset()  # values, or bits, marking pixels with no data


PRESETS: dict[str, CloudRule] = {
    # Sentinel-2 L2A scene classification (ESA): 8/9 cloud medium/high probability and
    # 10 thin cirrus make CLOUDY_PIXEL_PERCENTAGE; 3 cloud shadow, 11 snow, 0 no data.
    "s2-scl": CloudRule("s2-scl", "values", frozenset({8, 9, 10}), frozenset({3}),
                        frozenset({11}), frozenset({0})),
    # Landsat Collection 2 QA_PIXEL (USGS): CLOUD_COVER is the cloud bit 3 only; dilated
    # cloud (bit 1) and the high-confidence cirrus bit (2) are not cloud. 4 shadow, 5 snow,
    # bit 0 fill. See the module docstring.
    "landsat-qa": CloudRule("landsat-qa", "bits", frozenset({3}), frozenset({4}),
                            frozenset({5}), frozenset({0})),
    # Fmask: 0 clear land, 1 clear water, 2 shadow, 3 snow, 4 cloud, 255 fill.
    "fmask": CloudRule("fmask", "values", frozenset({4}), frozenset({2}), frozenset({3}),
                       frozenset({255})),
    # A plain binary cloud mask: 1 cloud, 0 clear (its nodata value, if any, is no data).
    "binary": CloudRule("binary", "values", frozenset({1})),
}  # fmt: skip

_CUSTOM = re.compile(r"^(values|bits):([\d,\s]+)$")


class CloudRuleError(ConfigurationError):
    """A cloud rule that is neither a preset nor values:/bits: with integers."""


def parse_rule(text: str) -> CloudRule:
    """A preset name (`PRESETS`), or `values:8,9,10` / `bits:1,2,3` naming the cloud values
    or bits (bits 0-63); a custom rule has no shadow, snow or no-data class. Raises
    `CloudRuleError` (a ValueError) for anything else, listing the presets."""
    if text in PRESETS:
        return PRESETS[text]
    match = _CUSTOM.match(text.strip())
    if match is None:
        raise CloudRuleError(
            f"unknown cloud rule {text!r}: use one of {', '.join(PRESETS)}, "
            "values:V1,V2,... or bits:B1,B2,..."
        )
    numbers = frozenset(int(n) for n in match.group(2).replace(" ", "").split(",") if n)
    if not numbers or (match.group(1) == "bits" and max(numbers) > 63):
        raise CloudRuleError(f"cloud rule {text!r} names no usable value or bit")
    return CloudRule(text, match.group(1), numbers)


@dataclass(frozen=True)
class CloudCounts:
    """Pixel counts of a mask (one block, or blocks summed with `+`): `valid` pixels (neither
    the raster's nodata, NaN, nor the rule's no-data class) and those of them that are
    cloud, shadow and snow."""

    valid: int = 0
    cloud: int = 0
    shadow: int = 0
    snow: int = 0

    def __add__(self, other: CloudCounts) -> CloudCounts:
        return CloudCounts(self.valid + other.valid, self.cloud + other.cloud,
                           self.shadow + other.shadow, self.snow + other.snow)  # fmt: skip

    def percent(self, what: str) -> float | None:
        """Share of valid pixels, in percent, rounded to 0.01; None with no valid pixel."""
        if self.valid == 0:
            return None
        return round(100.0 * getattr(self, what) / self.valid, 2)


def count(block: np.ndarray, rule: CloudRule, nodata: float | None = None) -> CloudCounts:
    """Count one block of a mask band: `block` is a 2-D (rows, cols) array of any integer or
    float dtype (floats are truncated to integers; NaN is no data). `nodata` is the mask
    raster's own nodata value (GDAL's, None when it has none); those pixels and the rule's
    no-data class are not valid and not counted."""
    values = np.asarray(block)
    valid = np.ones(values.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= values != nodata
    if values.dtype.kind == "f":
        valid &= np.isfinite(values)
        values = np.where(valid, values, 0).astype(np.int64)
    values = values.astype(np.int64, copy=False)
    if rule.nodata:
        valid &= ~_matches(values, rule.kind, rule.nodata)

    def n(classes: frozenset[int]) -> int:
        return int(np.count_nonzero(valid & _matches(values, rule.kind, classes))) if classes else 0

    return CloudCounts(int(np.count_nonzero(valid)), n(rule.cloud), n(rule.shadow), n(rule.snow))


def _matches(values: np.ndarray, kind: str, classes: frozenset[int]) -> np.ndarray:
    if kind == "values":
        return np.isin(values, list(classes))
    mask = sum(1 << b for b in classes)
    return (values & mask) != 0


# --- choosing between sources ----------------------------------------------------------


@dataclass(frozen=True)
class CloudEstimate:
    """One source's answer, in percent (0-100) of the valid pixels: `cloud_cover` becomes
    STAC `eo:cloud_cover` (eo extension v1.1), shadow and snow byod's own fields."""

    source: str  # "option", "mask:<file or band> (<rule>)", "sidecar:<file>", "imagery:CLOUDCOVER"
    cloud_cover: float
    shadow_cover: float | None = None
    snow_cover: float | None = None


@dataclass(frozen=True)
class CloudDecision:
    """The estimate `choose` kept (None: no source had one), and the report's note."""

    chosen: CloudEstimate | None
    note: str | None = None  # why it is absent, or that sources disagreed


DEFAULT_ORDER = ("option", "user", "mask", "sidecar", "imagery")
# Each kind of source in the user's words, for the note naming the ones looked at.
SOURCE_WORDS = {"option": "--cloud-cover", "user": "byod-metadata.csv", "mask": "mask",
                "sidecar": "sidecar metadata", "imagery": "IMAGERY CLOUDCOVER"}  # fmt: skip
DISAGREEMENT_PERCENT = 1.0


def choose(estimates: list[CloudEstimate], order: tuple[str, ...] = DEFAULT_ORDER) -> CloudDecision:
    """The estimate of the first source kind in `order`, with a note when none applies or the
    others disagree with it by more than DISAGREEMENT_PERCENT."""
    ranked = sorted(
        (e for e in estimates if _kind(e.source) in order),
        key=lambda e: order.index(_kind(e.source)),
    )
    if not ranked:
        looked = ", ".join(SOURCE_WORDS[k] for k in order if k in SOURCE_WORDS) or "none in order"
        return CloudDecision(None, f"no cloud source ({looked}); eo:cloud_cover left out")
    chosen = ranked[0]
    others = [e for e in ranked[1:]
              if abs(e.cloud_cover - chosen.cloud_cover) > DISAGREEMENT_PERCENT]  # fmt: skip
    note = None
    if others:
        listed = "; ".join(f"{e.source}: {e.cloud_cover}" for e in [chosen, *others])
        note = f"cloud sources disagree ({listed}); kept {chosen.source} by the configured order"
    return CloudDecision(chosen, note)


def _kind(source: str) -> str:
    return source.split(":", 1)[0]


def imagery_cloud_cover(tags: dict[str, str]) -> float | None:
    """The cloud cover in percent from GDAL's IMAGERY metadata domain (`tags` as read from
    it), or None. GDAL documents CLOUDCOVER as 0-100, 999 when not available; 999 and any
    other value outside 0-100 or not a number is None (never written as eo:cloud_cover)."""
    text = tags.get("CLOUDCOVER")
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= 100 else None
