"""Offline validation of a static catalog against the STAC and extension JSON schemas.

The schemas ship in `byod/schemas/` (copied from shared/stac-schemas, see SOURCES.md there),
so validation never reaches for the network; a schema that is not shipped is an error that
names it rather than a download.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pystac
import pystac.validation
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from byod.azure import AzureOptions, resolve_access
from byod.storage import Store, is_blob_url, open_store

# Where each shipped folder is published. projjson v0.2 and v0.5 (referenced by older
# projection versions) are served by v0.7, a close stand-in (see SOURCES.md).
_PUBLISHED = {
    "stac-spec": "https://schemas.stacspec.org",
    "extensions": "https://stac-extensions.github.io",
    "geojson": "https://geojson.org/schema",
    "projjson": "https://proj.org/schemas",
}


class SchemaNotShipped(LookupError):
    """A STAC object names a schema byod does not ship."""


@dataclass(frozen=True)
class Problem:
    href: str
    kind: str  # "catalog", "collection", "item"
    message: str


@cache
def local_schemas() -> dict[str, dict[str, Any]]:
    """Every shipped schema, keyed by the URL it is published at."""
    root = resources.files("byod") / "schemas"
    out: dict[str, dict[str, Any]] = {}

    def walk(node: Any, parts: tuple[str, ...]) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, (*parts, child.name))
            elif child.name.endswith(".json"):
                top, *rest = (*parts, child.name)
                if top == "extensions":
                    rest = [*rest[:2], child.name] if len(rest) == 3 else rest
                url = "/".join([_PUBLISHED[top], *rest])
                out[url] = json.loads(child.read_text("utf-8"))

    walk(root, ())
    stand_in = "https://proj.org/schemas/v0.7/projjson.schema.json"
    for version in ("v0.2", "v0.5", "v0.6"):
        out[stand_in.replace("v0.7", version)] = out[stand_in]
    return out


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's validator with the schema cache filled from disk and downloads refused."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache.update(local_schemas())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        key = schema_uri.rstrip("#")
        if key not in self.schema_cache:
            raise SchemaNotShipped(f"schema {schema_uri} is not shipped with byod")
        return self.schema_cache[key]


def validate_catalog(url: str) -> tuple[int, list[Problem]]:
    """Validate the root catalog at `url` (a folder or catalog.json) and everything below it.

    Returns the number of objects checked and the problems found.
    """
    key = "catalog.json"
    base = url[: -len(key)] if url.endswith(key) else url
    store: Store = open_store(base, resolve_access(AzureOptions()) if is_blob_url(base) else None)
    validator = OfflineValidator()
    problems: list[Problem] = []
    count = 0
    queue = [(key, "catalog")]
    while queue:
        current, kind = queue.pop()
        count += 1
        href = store.href(current)
        try:
            data = json.loads(store.read_text(current))
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(Problem(href, kind, f"cannot be read: {exc}"))
            continue
        try:
            pystac.validation.validate_dict(data, href=href, validator=validator)
        except pystac.STACValidationError as exc:
            problems.append(Problem(href, kind, _validation_message(exc)))
        except SchemaNotShipped as exc:
            problems.append(Problem(href, kind, str(exc)))
        for link in data.get("links", []):
            rel = link.get("rel")
            if rel in ("child", "item") and "://" not in link["href"]:
                child = posixpath.normpath(posixpath.join(posixpath.dirname(current), link["href"]))
                queue.append((child, "item" if rel == "item" else _kind_of_child(store, child)))
    return count, problems


def _kind_of_child(store: Store, key: str) -> str:
    return "collection" if key.endswith("collection.json") else "catalog"


def _validation_message(exc: pystac.STACValidationError) -> str:
    source = getattr(exc, "source", None)
    detail = getattr(source, "message", None) if source is not None else None
    return str(detail or exc).splitlines()[0]
