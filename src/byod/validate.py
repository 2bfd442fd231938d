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
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema
import pystac
import pystac.validation
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from byod.errors import ConfigurationError
from byod.keys import COLLECTION_FILE, ROOT_KEY, collection_key
from byod.storage import Store, catalog_store

# Where each shipped folder is published. projjson v0.2 and v0.5 (referenced by older
# projection versions) are served by v0.7, a close stand-in (see SOURCES.md).
_PUBLISHED = {
    "stac-spec": "https://schemas.stacspec.org",
    "extensions": "https://stac-extensions.github.io",
    "geojson": "https://geojson.org/schema",
    "projjson": "https://proj.org/schemas",
}


class SchemaNotShipped(LookupError):
    """A STAC object names a schema byod does not ship (validation never downloads one)."""


@dataclass(frozen=True)
class Problem:
    """One object that failed: `message` is one line naming the field and the rule."""

    href: str
    kind: str  # "catalog", "collection", "item"
    message: str
    field: str | None = None  # JSON path of the offending value, e.g. $.properties.datetime
    rule: str | None = None  # the schema keyword that failed, at its URI#pointer


@cache
def local_schemas() -> dict[str, dict[str, Any]]:
    """Every shipped schema (src/byod/schemas: STAC 1.0.0 and 1.1.0 core, the extensions' versions
    byod writes, GeoJSON, PROJJSON), keyed by the URL it is published at."""
    root = resources.files("byod") / "schemas"
    out: dict[str, dict[str, Any]] = {}

    def walk(node: Traversable, parts: tuple[str, ...]) -> None:
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
    """Validate the root catalog at `url` and everything below it: any location
    `storage.catalog_store` reads (a folder, az:// or https blob URL, or its catalog.json).

    Each object reachable by relative `child`/`item` links is checked against the STAC
    and extension JSON schemas it declares (pystac's JsonSchemaSTACValidator, offline);
    collections in the folder that the root does not link are problems too.
    Returns the number of objects checked and the problems found. Raises
    `ConfigurationError` when there is no root catalog there (or `url` is not a catalog
    location, or Azure credentials are missing), as for every kind of store; storage
    errors of the first read (`Store.exists`) propagate as the store raises them.
    """
    key = ROOT_KEY
    store, _ = catalog_store(url)
    if not store.exists(key):
        raise ConfigurationError(f"{store.href(key)}: no catalog there")
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
            problems.append(_problem(href, kind, exc))
        except SchemaNotShipped as exc:
            problems.append(Problem(href, kind, str(exc)))
        for link in data.get("links", []):
            rel = link.get("rel")
            if rel in ("child", "item") and "://" not in link["href"]:
                child = posixpath.normpath(posixpath.join(posixpath.dirname(current), link["href"]))
                queue.append((child, "item" if rel == "item" else _kind_of_child(store, child)))
    problems += _unlinked_collections(store, key)
    return count, problems


def _unlinked_collections(store: Store, root_key: str) -> list[Problem]:
    """Collections present in the catalog's folder (`catalog.collection_ids`) that the root
    does not link: a reader walking the catalog never finds them (a run killed between a
    collection's switch and the root update; the next ingest into any collection repairs)."""
    from byod.catalog import collection_ids

    try:
        root = json.loads(store.read_text(root_key))
    except (OSError, json.JSONDecodeError):
        return []  # reported above as unreadable
    linked = {posixpath.normpath(link["href"]) for link in root.get("links", [])
              if link.get("rel") == "child" and "://" not in link.get("href", "")}  # fmt: skip
    return [Problem(store.href(collection_key(c)), "collection",
                    "not linked from the root catalog (no child link): readers walking the "
                    "catalog miss it; the next byod ingest into the catalog adds the link")
            for c in collection_ids(store) if collection_key(c) not in linked]  # fmt: skip


def _kind_of_child(store: Store, key: str) -> str:
    return "collection" if posixpath.basename(key) == COLLECTION_FILE else "catalog"


def _problem(href: str, kind: str, exc: pystac.STACValidationError) -> Problem:
    """The failure jsonschema ranks first (`best_match`, the error pystac reports too), as
    the field it concerns (a JSON path), the keyword that failed and where that keyword is
    written: the published schema's URL and the JSON pointer (RFC 6901) into it."""
    errors = exc.source if isinstance(exc.source, list) else []
    best = jsonschema.exceptions.best_match(errors)
    if best is None:
        return Problem(href, kind, str(exc).splitlines()[0])
    field = best.json_path
    if best.validator == "required" and isinstance(best.instance, dict):
        # The error sits on the object; the field is the first required name it lacks.
        missing = [n for n in best.validator_value if n not in best.instance]
        field = f"{field}.{missing[0]}" if missing else field
    rule = f"{best.validator} at {_locate(best.schema, best.validator)}"
    if rule.endswith(" at None"):  # not a shipped schema's part: the path as evaluated
        schema = str(exc).splitlines()[0].rpartition(" against schema at ")[2]
        rule = f"{best.validator} via {schema} {'/'.join(map(str, best.schema_path))}"
    text = best.message if len(best.message) <= 200 else best.message[:197] + "..."
    return Problem(href, kind, f"{field}: {text} (schema rule {rule})", field, rule)


def _locate(subschema: Any, keyword: str) -> str | None:
    """`URL#pointer` of `keyword` in the shipped schema that holds `subschema` (found by
    identity: jsonschema evaluates the very dicts `local_schemas` loaded, $refs resolved)."""
    for url, document in local_schemas().items():
        path = _path_to(document, subschema)
        if path is not None:
            escaped = (p.replace("~", "~0").replace("/", "~1") for p in (*path, keyword))
            return f"{url}#/{'/'.join(escaped)}"
    return None


def _path_to(node: Any, target: Any) -> list[str] | None:
    if node is target:
        return []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else ()  # fmt: skip
    for key, child in children:
        if isinstance(child, dict | list):
            found = _path_to(child, target)
            if found is not None:
                return [str(key), *found]
    return None
