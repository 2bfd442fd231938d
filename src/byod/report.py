"""The report of a run: one row per input, written as JSON and rendered by the edges.

A run that stops midway still has a report: `error` says why, in one line, and every input
it did not finish has a row with status `not_done` (not worked on, or stored but not
published). Exit codes are decided in one place, the CLI (`byod.cli.exit_code`).
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from byod.reasons import Reason


class Status(StrEnum):
    """What a run did with one input (a report row's `status`)."""

    INGESTED = "ingested"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    NOT_DONE = "not_done"  # the run stopped before this input was published
    REMOVED = "removed"  # --prune: the input is no longer in the source; its items removed


# The stages of one input a row times, in order (Row.stages): `fingerprint`, `fetch` and
# `store` in the parent, the rest in the worker (byod.work.PrepareResult.seconds).
STAGE_NAMES = ("fingerprint", "fetch", "inspect", "metadata", "convert", "validate",
               "footprint", "thumbnail", "checksum", "store")  # fmt: skip


@dataclass
class Row:
    """One input's line of the report: `reason` (byod.reasons) and `message` say why it was
    rejected or not done; times in seconds."""

    input: str  # path relative to the source folder
    status: Status
    item_ids: list[str] = field(default_factory=list)
    reason: Reason | None = None
    message: str | None = None
    seconds: float | None = None  # spent on this input: fingerprint, fetch, worker, store
    notes: list[str] = field(default_factory=list)
    # Seconds per stage (STAGE_NAMES), measured where each runs: the parent fingerprints,
    # fetches and stores, the worker inspects ... checksums. Their sum is at most `seconds`.
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    """A run's report (`byod-report.json`): one row per input, run-level notes, the error
    that stopped it if any; `started`/`finished` are RFC 3339 UTC, times in seconds."""

    source: str
    collection: str
    catalog: str
    target: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished: str | None = None
    rows: list[Row] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files neither raster nor sidecar
    notes: list[str] = field(default_factory=list)  # about the run, not one input
    storage: str | None = None  # where blobs went and why that was allowed (region guard)
    region_overridden: bool = False
    error: str | None = None  # why the run stopped, one line; None for a run that finished
    # Seconds of the run's own steps, not of one input: `plan` (discover, fingerprint,
    # settle unchanged), `publish` (every publish of the run, summed).
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per status; `not_done` appears only in a run that stopped, `removed` only in
        one that pruned."""
        out = {s.value: 0 for s in Status if s not in (Status.NOT_DONE, Status.REMOVED)}
        for row in self.rows:
            out[row.status.value] = out.get(row.status.value, 0) + 1
        return out

    @property
    def rejected(self) -> list[Row]:
        """The rows of rejected inputs."""
        return [r for r in self.rows if r.status is Status.REJECTED]

    def stop(self, error: str, not_done: dict[str, str]) -> None:
        """Record that the run stopped: why (one line), and the inputs it did not finish, as
        rows `not_done` with the reason each (input path -> what happened to it)."""
        self.error = error
        self.rows = [r for r in self.rows if r.input not in not_done]
        for path, message in not_done.items():
            self.rows.append(Row(path, Status.NOT_DONE, message=f"{path}: {message}"))
        self.rows.sort(key=lambda r: r.input)
        self.finished = datetime.now(UTC).isoformat()

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data, with `counts`; rows without their empty fields."""
        data = asdict(self)
        data["counts"] = self.counts()
        data["rows"] = [{k: v for k, v in asdict(r).items() if v not in (None, [], {})}
                        for r in self.rows]  # fmt: skip
        return data

    def write(self, path: Path) -> None:
        """Write `to_dict` as UTF-8 JSON to `path` (folders made), replaced whole: a
        `.partial` file renamed into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        tmp.replace(path)


def to_markdown(report: Report, collection_href: str | None = None) -> str:
    """The report as Markdown: counts, links, and a row per input (for a Prefect artifact or
    a pull request comment; no secrets are in a report).

    Every text that can come from an input (file names, messages, notes) is shown as text,
    never as markup: `markdown_text` escapes it.
    """
    counts = report.counts()
    md = markdown_text
    lines = [
        f"# byod ingest: {md(report.collection)}",
        "",
        " · ".join(f"**{n}** {s}" for s, n in counts.items()),
        "",
        *([f"**The run stopped:** {md(report.error)}", ""] if report.error else []),
        f"- catalog: [{md(report.catalog)}](<{_url(report.catalog)}>)",
    ]
    if collection_href:
        lines.append(f"- collection: [{md(collection_href)}](<{_url(collection_href)}>)")
    if report.storage:
        flag = " **(REGION GUARD OVERRIDDEN)**" if report.region_overridden else ""
        lines.append(f"- storage: {md(report.storage)}{flag}")
    lines += ["", "| input | status | items / reason |", "| --- | --- | --- |"]
    for row in report.rows:
        detail = (f"`{row.reason}`: {md(row.message or '')}" if row.status is Status.REJECTED
                  else md(row.message or "") if row.status is Status.NOT_DONE
                  else ", ".join(md(i) for i in row.item_ids))  # fmt: skip
        notes = "".join(f"<br>{md(n)}" for n in row.notes)
        lines.append(f"| {md(row.input)} | {row.status} | {detail}{notes} |")
    for note in report.notes:
        lines.append(f"\n> {md(note)}")
    return "\n".join(lines) + "\n"


def printable(text: str) -> str:
    """`text` with every character a terminal or renderer would act on rather than show
    written out as Python's `repr` writes it: C0 and C1 controls (ESC `\\x1b`, newline `\\n`,
    CSI `\\x9b`), bidi overrides (`\\u202e`), the surrogates that stand for undecodable bytes
    of a name (`\\udcff`). The rule is `str.isprintable` (Unicode categories Cc, Cf, Cs, Co,
    Cn, Zl, Zp and separators other than the space)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def markdown_text(text: str) -> str:
    """`text` (from an input: a file name, a message) as literal Markdown text: `printable`,
    then every ASCII punctuation character backslash-escaped (CommonMark 0.31, "Backslash
    escapes": any ASCII punctuation may be escaped) and `<`, `>`, `&` as HTML entities, so
    no link, emphasis, table cell break (`|`) or raw HTML can come from it."""
    out = []
    for c in printable(text):
        if c in _HTML_ENTITIES:
            out.append(_HTML_ENTITIES[c])
        elif c in string.punctuation:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


_HTML_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _url(href: str) -> str:
    """A link destination in angle brackets (CommonMark): spaces allowed, no `<>` or newline."""
    return quote(printable(href), safe=":/?#@!$&'()*+,;=%~._-")
