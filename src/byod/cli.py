"""The `byod` command line: parse options, call the library, render progress and the report.

No logic lives here that the Prefect flows would have to repeat. Heavy modules (the
pipeline, GDAL, pystac, Azure's SDK, rich's tables) are imported inside the commands that
use them, so `byod --version` and `byod --help` answer at once (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, get_args

import typer
import typer.core
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from typer import _click as click  # typer vendors click; its commands use these classes

from byod.azure import AzureOptions
from byod.config import (
    Compression,
    IngestSettings,
    build_settings,
    setting_paths,
)
from byod.errors import (
    ByodError,
    ConfigurationError,
    RunFailed,
    RunInterrupted,
    StorageUnavailable,
    storage_failure,
)
from byod.export import ExportFormat
from byod.locations import SOURCE_PLACES, check_source, container_of, normalize_location
from byod.options import CloudOptions, TimeOptions, clause, setting_problems
from byod.report import Report, Status, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from byod.pipeline import Progress as PipelineProgress
    from byod.storage import Store


class _Command(typer.core.TyperCommand):
    """A command whose help reads like rasterio's and git's: `SOURCE` in the usage line (not
    typer's `{source}`), no value shown for flags, and plain value names (N, SECONDS, ...)."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _plain_metavar(param)
        return params


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _plain_metavar(param)
        return params

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **kwargs: Any,
    ) -> Any:
        """click's main, with usage errors as one line (`_usage_line`) instead of typer's
        usage and box. click's non-standalone mode hands the exceptions back (its `main`
        docstring), so the message is built from `UsageError.format_message`, not parsed
        from text; `--help` and the commands' own output are untouched."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **kwargs)
        try:
            done = super().main(args, prog_name, complete_var, False, windows_expand_args, **kwargs)
        except typer.Abort:
            _err().print("Aborted.")
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError as exc:  # the help, printed when raised
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # The parser raises some errors (`--quiet=1`) without a context: the command is
            # then the first argument that names one.
            given = list(sys.argv[1:] if args is None else args)
            name = next((a for a in given if a in self.commands), None)
            path = f"{prog_name or 'byod'} {name}" if name else None
            line = _usage_line(exc, path)
            _err().print(f"[red]error:[/] {_shown(line)}", soft_wrap=True, highlight=False)
            sys.exit(exc.exit_code)
        # Non-standalone, click returns the code of a `typer.Exit` (None when none was raised).
        sys.exit(done if isinstance(done, int) else 0)


def _usage_line(exc: click.ClickException, command_path: str | None = None) -> str:
    """`byod ingest: no such option: --foo (see byod ingest --help)`: click's message in one
    line, with the command it is about (`command_path` when the error has no context) and
    where its help is."""
    text = ""
    for line in (line.strip() for line in exc.format_message().splitlines()):
        if line:  # a list click breaks over lines ("Choose from:", "a,", "b") stays a list
            text += ("" if not text else " " if text.endswith((":", ",")) else "; ") + line
    text = clause(text)  # pydantic's "Value error, " (typer passes it on) dropped
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else command_path
    if path is None:
        return text
    return f"{path}: {text} (see {path} --help)"


# Value names by annotation, where an option does not name its value itself.
_METAVARS = {int: "INTEGER", float: "NUMBER", str: "TEXT", Path: "PATH", datetime: "DATETIME"}


class _Argument(typer.core.TyperArgument):
    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None  # its name (SOURCE, CATALOG) says what it is; typer would add `<str>`


def _plain_metavar(param: click.Parameter) -> None:
    """Flags and counters take no value, so show none (typer shows `<bool>`, `<int>`)."""
    if type(param) is typer.core.TyperArgument:
        param.__class__ = _Argument  # typer offers no argument class to choose
    if param.metavar is not None or not isinstance(param, typer.core.TyperOption):
        return
    if param.is_flag or param.count:
        param.metavar = ""
        return
    annotation = param.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        param.metavar = "|".join(m.value for m in annotation)
    else:
        param.metavar = _METAVARS.get(annotation, "TEXT")


app = typer.Typer(
    help="Bring your own rasters: Cloud Optimized GeoTIFFs and a static STAC catalog.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Group,
)
command = functools.partial(app.command, cls=_Command)


# rich is imported when something is printed: a quiet no-op prints nothing (issue 13).
def _console(**options: Any) -> Console:
    from rich.console import Console

    console = Console(**options)
    console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]  # rich's own hook
    return console


class _ReaderGone(Exception):
    """The reader of stdout went away (`byod search ... | head -1`)."""


def _reader_gone() -> NoReturn:
    """stdout pointed at /dev/null (as Python's and rich's docs do for SIGPIPE), so that
    nothing else fails writing to it, then `_ReaderGone`: rich's own hook exits 1, which
    for `byod ingest` means "some inputs rejected"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise _ReaderGone


@contextlib.contextmanager
def _output() -> Iterator[None]:
    """Printing a command's output on stdout: when its reader goes away, what is left is
    dropped without a word and the command exits with its own code (a run that ingested
    everything still exits 0), not 1 (rich) or 3 ("unexpected BrokenPipeError")."""
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(_ReaderGone):
            _reader_gone()
    except _ReaderGone:
        pass


@functools.cache
def _err() -> Console:
    return _console(stderr=True)  # follows sys.stderr when printing, as rich's own


def _escape(markup: str) -> str:
    """rich's `rich.markup.escape`, whose only changes are to a `[` and a final `\\`:
    help texts without either are read at import, before rich is."""
    if "[" not in markup and not markup.endswith("\\"):
        return markup
    from rich.markup import escape

    return escape(markup)


EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
log = logging.getLogger("byod")
# The choices are written once, in config.Compression.
# mypy cannot type an Enum whose members are computed (misc).
CompressionChoice = StrEnum("CompressionChoice", {v: v for v in get_args(Compression)})  # type: ignore[misc]
# `--datetime`: a day, or RFC 3339 with `T` or the space it allows, to the minute, second or
# a fraction of it, with a zone or without (UTC), as byod.yaml reads them.
_DATETIME_FORMATS = ["%Y-%m-%d"] + [
    f"%Y-%m-%d{t}{clock}{zone}"
    for t in ("T", " ")
    for clock in ("%H:%M", "%H:%M:%S", "%H:%M:%S.%f")
    for zone in ("", "%z", "Z")
]
_STATUS_STYLE = {Status.INGESTED: "green", Status.REPLACED: "cyan",
                 Status.UNCHANGED: "dim", Status.REJECTED: "red",
                 Status.NOT_DONE: "yellow", Status.REMOVED: "magenta"}  # fmt: skip
# Where a catalog or the COGs may live: the text of SOURCE, --target and --catalog (their
# fields' descriptions) is every CATALOG's too.
_PLACES = SOURCE_PLACES
# The settings model's sections, by the name of the field that holds each.
_SECTIONS: dict[str, type[BaseModel]] = {
    "time": TimeOptions,
    "clouds": CloudOptions,
    "azure": AzureOptions,
}
# pydantic's inclusive bounds (annotated_types' Ge, Le) as typer's `min`/`max`, which it
# checks and shows (`[x>=1]`). typer has no open bound (click's min_open): a `gt`/`lt` is
# checked by `_bounded` and shown at the end of the help in the form of typer's ranges.
_CLOSED = {"ge": "min", "le": "max"}
_OPEN = {"gt": ">", "lt": "<"}


def _field(path: str) -> FieldInfo:
    """The settings model's field of a dotted path (`timeout_s`, `clouds.rule`)."""
    *sections, name = path.split(".")
    model: type[BaseModel] = IngestSettings
    for section in sections:
        model = _SECTIONS[section]
    return model.model_fields[name]


def _help(info: FieldInfo) -> str:
    # Shown as written: a `[` in a description is text, not rich markup.
    return _escape(info.description or "")


def _bounded(info: FieldInfo) -> Callable[[str], Any]:
    """typer's `parser` for a number option with an open bound: the text read by the field's
    own type and bounds (pydantic's TypeAdapter), so the CLI refuses what the model refuses,
    with its message (`Input should be greater than 0`)."""
    from pydantic import TypeAdapter

    number = next(t for t in (int, float) if t in (info.annotation, *get_args(info.annotation)))
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[number, *info.metadata])  # type: ignore[arg-type]

    def parse(text: str) -> Any:
        try:
            return adapter.validate_python(text)
        except ValidationError as exc:  # typer reports a ValueError as the option's
            raise ValueError(exc.errors()[0]["msg"]) from None

    return parse


def _setting(path: str, *names: str, **extra: Any) -> Any:
    """`byod ingest`'s option for the settings field at `path`: its default, bounds and help
    are the field's (its `description`, `ge`/`gt`/`le`/`lt`), so the CLI follows the model.

    `names` are the option's flags where they are not the parameter's own; `extra` is what
    only the command line has (metavar, callback, formats). A default made by a factory
    (`workers`) is None here: the model makes it. A tuple (the sources' orders) is shown
    and typed comma-separated (`_CSV`). The option carries its default (typer's
    `param: type = typer.Option(default, ...)` form), so the field is named once."""
    info = _field(path)
    default = None if info.default_factory is not None else info.default
    if isinstance(default, tuple):
        default = ", ".join(default)
    text, bounds = _help(info), dict[str, Any]()
    for rule in info.metadata:
        for attribute, keyword in _CLOSED.items():
            if getattr(rule, attribute, None) is not None:
                bounds[keyword] = getattr(rule, attribute)
        for attribute, sign in _OPEN.items():
            if getattr(rule, attribute, None) is not None:
                text += f" \\[x{sign}{getattr(rule, attribute)}]"
                bounds["parser"] = _bounded(info)
    return typer.Option(default, *names, help=text, **bounds, **extra)


def exit_code(report: Report | None, error: BaseException | None = None) -> int:
    """The one place exit codes are decided (README "Exit status"):

    0 every input ingested or unchanged; 1 some inputs rejected (the rest published);
    2 usage, configuration or storage unreachable, nothing written (`ConfigurationError`,
    `StorageUnavailable`); 3 the run failed midway (`RunFailed`, or any unexpected error);
    128 + the signal for a run stopped by SIGINT (130) or SIGTERM (143) (`RunInterrupted`).
    """
    if error is None:
        return EXIT_REJECTED if report is not None and report.rejected else EXIT_OK
    if isinstance(error, RunInterrupted):
        return 128 + error.signum
    if isinstance(error, ConfigurationError | StorageUnavailable):
        return EXIT_USAGE
    return EXIT_FAILED


F = TypeVar("F", bound=Callable[..., Any])


def _ends_cleanly(command: F) -> F:
    """No traceback on the terminal: byod's errors and unexpected ones become one line on
    stderr and their exit code; the traceback goes to the log (`byod -v`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:  # noqa: BLE001 - the edge: every error ends as one line
            _fail(exc)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps F's signature


def _fail(exc: BaseException) -> NoReturn:
    if isinstance(exc, ByodError):  # its cause (an Azure or OS error) for `byod -vv`
        log.debug("what ended the run", exc_info=exc)
    else:
        log.info("traceback of the failure", exc_info=exc)
        # validate, search, browse, sign: a store that failed is exit 2, like an ingest's.
        exc = storage_failure(exc, "storage") or exc
    _err().print(f"[red]error:[/] {_shown(_one_line(exc))}", soft_wrap=True)  # one line
    raise typer.Exit(exit_code(None, exc))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ByodError):  # byod's messages are one line: a newline is a name's
        return printable(str(exc).strip())
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"unexpected {type(exc).__name__}: {text} (details with byod -v)"


def _shown(text: str) -> str:
    """Text that may come from an input (a file name, a message naming one) as the terminal
    must show it: control characters written out (`report.printable`: no ESC sequence, OSC-8
    link or newline reaches the terminal) and rich markup escaped (shown, not interpreted)."""
    return _escape(printable(text))


def _rich_progress(bar: Progress) -> PipelineProgress:
    """The pipeline's progress drawn on a rich bar (the pipeline is imported only here)."""
    from byod.pipeline import Progress as PipelineProgress
    from byod.report import Row

    class RichProgress(PipelineProgress):
        def __init__(self) -> None:
            self.task = bar.add_task("ingest", total=None)

        def discovered(self, total: int) -> None:
            bar.update(self.task, total=total)

        def stage(self, input: str, stage: str) -> None:
            bar.update(self.task, description=f"{_shown(stage):>8} {_shown(input)}")

        def finished(self, row: Row) -> None:
            bar.advance(self.task)
            if row.status is Status.REJECTED:
                bar.console.print(f"[red]rejected[/] {_shown(row.message or row.input)}")

    return RichProgress()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"byod {version('byod')}")
        raise typer.Exit()


def _log_level(verbose: int) -> int:
    return logging.WARNING - 10 * min(verbose, 2)


def _more_logging(ctx: typer.Context, value: int) -> int:
    """A command's own `-v`s add to those given before it (`byod -v ingest SRC -v` is -vv)."""
    if value:
        before = ctx.parent.params.get("verbose", 0) if ctx.parent is not None else 0
        logging.getLogger().setLevel(_log_level(before + value))
    return value


def _location(value: Any) -> Any:
    """Every folder or URL option and argument passes here as it is parsed: `~` expanded,
    `file:///path` made a path, an empty one refused (`locations.normalize_location`)."""
    if value is None:
        return None
    try:
        text = normalize_location(str(value))
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc)) from None
    return Path(text) if isinstance(value, Path) else text


def _local_folder(value: str | None) -> str | None:
    """A folder byod writes files to on this machine (export --out): a URL is refused."""
    # Before a URL's own checks (its container's name); file:///path is a folder.
    if value is not None and "://" in value and not value.lower().startswith("file://"):
        raise typer.BadParameter(f"{value}: export writes to a local folder, not a URL")
    return _location(value)


# `-v` after the command too (`byod ingest SRC -v`), as rasterio's commands take it; every
# command has this parameter, which only sets the log level (it is not used otherwise).
Verbose = Annotated[
    int,
    typer.Option("--verbose", "-v", count=True, callback=_more_logging,
                 help="More logging (-vv: debug); also before the command."),
]  # fmt: skip

# The catalog `search`, `export` and `browse` read, and the collections they read of it.
Catalog = Annotated[
    str,
    typer.Argument(metavar="CATALOG", callback=_location,
                   help=f"Root catalog: {_PLACES}, its catalog.json or https URL."),
]  # fmt: skip
Collections = Annotated[
    list[str] | None, typer.Option(help="Collection id (repeat for several) \\[default: all].")
]


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Bring your own rasters: Cloud Optimized GeoTIFFs and a static STAC catalog."""
    logging.basicConfig(level=_log_level(verbose), format="%(levelname)s %(name)s: %(message)s")
    # urllib3 logs whole request URLs at DEBUG, SAS signatures included; Azure's HTTP logger
    # prints every header. Neither may reach a log line, whatever the verbosity.
    for name in ("urllib3", "azure", "azure.core.pipeline.policies.http_logging_policy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # DefaultAzureCredential warns a dozen lines when it finds no credential; byod says it in
    # one (azure._AccountCredential), the chain's text at -vv.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


@command()
@_ends_cleanly
def ingest(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            callback=_location,
            help=_help(_field("source")),
        ),
    ],
    # A settings field's option: its default, bounds and help from the model (`_setting`).
    collection: str | None = _setting("collection"),
    target: str = _setting("target", metavar="FOLDER|URL", callback=_location),
    catalog: str = _setting("catalog", metavar="FOLDER|URL", callback=_location),
    datetime_: datetime | None = _setting(  # noqa: B008 - made once, as typer means
        "time.datetime",
        "--datetime",
        metavar="DATETIME",
        formats=_DATETIME_FORMATS,
    ),
    workers: int | None = _setting("workers"),
    timeout: float = _setting("timeout_s"),
    max_memory: int = _setting("max_memory_mb"),
    memory_budget: int = _setting("memory_budget_mb"),
    max_pixels: int = _setting("max_pixels"),
    disk_budget: int | None = _setting("disk_budget_mb"),
    compression: CompressionChoice = _setting("compression"),  # noqa: B008
    license: str = _setting("license"),
    description: str | None = _setting("description"),
    title: str | None = _setting("title"),
    cloud_cover: float | None = _setting("clouds.cover"),
    cloud_rule: str | None = _setting("clouds.rule"),
    cloud_band: int | None = _setting("clouds.band"),
    cloud_order: str = _setting("clouds.order"),
    datetime_pattern: str | None = _setting("time.pattern"),
    datetime_order: str = _setting("time.order"),
    require_datetime: bool = _setting("time.require", "--require-datetime"),
    group_pattern: str | None = _setting("group_pattern"),
    config: Annotated[
        Path | None,
        typer.Option(
            callback=_location, help="Dataset configuration file \\[default: byod.yaml in SOURCE]."
        ),
    ] = None,
    azure_account: str | None = _setting("azure.account_name"),
    azure_region: str | None = _setting("azure.region"),
    allow_any_region: bool = _setting("azure.allow_any_region", "--allow-any-region"),
    prune: bool = _setting("prune", "--prune"),
    publish_every: int = _setting("publish_every_inputs"),
    publish_every_s: float = _setting("publish_every_s"),
    report: Annotated[
        Path | None, typer.Option(callback=_location, help="Write the JSON report to this file.")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no table.")] = False,
    request_timeout: float = _setting("azure.request_timeout_s"),
    verbose: Verbose = 0,
) -> None:
    """Convert every raster under SOURCE to a COG and publish it in the STAC catalog."""
    # Only what was typed overrides the dataset's byod.yaml; the rest falls to it or defaults.
    # The settings' options are read from ctx.params by name (`_typed_settings`), not one by
    # one from the parameters above, so a field and its option are matched in one place.
    typed = _typed_settings(ctx)
    given = ctx.params  # what the report of a run that cannot start names
    from byod.dataset_config import DatasetConfigError
    from byod.pipeline import ingest as run_ingest

    if report is not None and report.is_dir():  # found before the run, not after it
        _usage_error(f"--report {_shown(str(report))}: a folder; give the report's file name, "
                     f"e.g. {_shown(str(report / 'byod-report.json'))}")  # fmt: skip
    ends = functools.partial(_end_ingest, path=report, json_=json_, quiet=quiet)
    try:
        check_source(source)  # before anything is opened or written
        settings = build_settings(source, typed, str(config) if config else None)
    except ValidationError as exc:
        message = _settings_problems(ctx, exc, str(config) if config else None, source)
        ends(_no_report(source, given), ConfigurationError(message))
    except DatasetConfigError as exc:
        ends(_no_report(source, given), ConfigurationError(str(exc)))
    except ConfigurationError as exc:
        ends(_no_report(source, given), exc)
    if report is not None:
        _refuse_report_inside(report, settings)
    show = not quiet and not json_ and _err().is_terminal
    try:
        if show:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())  # fmt: skip
            with Progress(*columns, console=_err(), transient=True) as bar:
                outcome = run_ingest(settings, _rich_progress(bar))
        else:
            outcome = run_ingest(settings)
    except ByodError as exc:
        ends(exc.report or _no_report(source, given), exc)
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen fault: still a report
        ends(_no_report(source, given), exc)
    ends(outcome, None)


def _settings_problems(
    ctx: typer.Context, exc: ValidationError, config: str | None, source: str
) -> str:
    """The settings' validation errors as the user wrote them: `byod ingest: --cloud-rule:
    unknown cloud rule 'zzz': ... (see byod ingest --help)` for an option, `byod.yaml:
    group.pattern: ...` for the dataset's file; never pydantic's field paths and "Value
    error". (A bad value in the file's `time:`/`clouds:` sections is refused as the file is
    read: `dataset_config.load_config`.)"""
    from byod.dataset_config import SETTING_KEYS, DatasetConfigError, find_config

    try:
        file = find_config(source, config)
    except DatasetConfigError:
        file = None
    options = {p.name: max(p.opts, key=len) for p in ctx.command.params if p.opts}
    problems, on_command_line = [], True
    for path, text in setting_problems(exc):
        parameter = _PARAMETER.get(path, path)
        if file is None or (parameter in options and _typed(ctx, parameter)):
            where = options.get(parameter, path)
        else:
            on_command_line = False
            where = f"{file}: {SETTING_KEYS.get(path, path)}"
        problems.append(f"{where}: {text}")
    message = "; ".join(dict.fromkeys(problems))
    if on_command_line:
        return f"{ctx.command_path}: {message} (see {ctx.command_path} --help)"
    return message


def _refuse_report_inside(report: Path, settings: IngestSettings) -> None:
    """A usage error (nothing run, nothing written) when `--report` would be written inside
    the target or the catalog (it would replace a COG or the root catalog.json: newcomer N5,
    `--report cat/catalog.json`), or over a file of the source that is no byod report (an
    input, a sidecar, byod.yaml). A new report file in the source is fine."""
    path = report.resolve()
    for what, place in (("--target", settings.target), ("--catalog", settings.catalog)):
        folder = None if "://" in place else Path(place).resolve()
        if folder is not None and (path == folder or path.is_relative_to(folder)):
            shown = _shown(str(folder))
            _usage_error(f"--report {_shown(str(report))}: inside {what} ({shown}), byod's "
                         "own files: write it elsewhere")  # fmt: skip
    source = None if "://" in settings.source else Path(settings.source).resolve()
    if source is not None and path.is_relative_to(source) and path.is_file():
        try:
            previous = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            previous = None
        if not (isinstance(previous, dict) and {"rows", "counts"} <= previous.keys()):
            _usage_error(
                f"--report {_shown(str(report))}: a file of the source that is "
                "no byod report (an input, a sidecar, byod.yaml?): write it elsewhere"
            )


def _no_report(source: str, given: dict[str, Any]) -> Report:
    """The report of a run that could not start: no rows, the places it was asked for."""
    return Report(source, str(given.get("collection") or ""), str(given.get("catalog")),
                  str(given.get("target")))  # fmt: skip


def _end_ingest(
    outcome: Report, error: Exception | None, *, path: Path | None, json_: bool, quiet: bool
) -> NoReturn:
    """Every run ends here, finished or not: the report (file, JSON or table), then the
    error in one line, then the exit code."""
    if error is not None and outcome.error is None:
        outcome.error = _one_line(error)
    if path is not None:
        try:
            outcome.write(path)
        except OSError as exc:  # a full disk must not hide the run's own outcome
            lost = RunFailed(f"report not written to {printable(str(path))}: {exc.strerror}")
            # Exit 3 (what was done is not on record), or the run's own code when worse.
            if error is None or exit_code(outcome, error) < EXIT_FAILED:
                error = lost
            else:
                _err().print(f"[red]error:[/] {_escape(lost.message)}", soft_wrap=True)
    with _output():
        if json_:
            sys.stdout.write(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif not quiet and (outcome.rows or error is None):
            _print_summary(outcome)
    if error is not None:
        _fail(error)
    raise typer.Exit(exit_code(outcome))


@command()
@_ends_cleanly
def validate(
    catalog: Annotated[
        str,
        typer.Argument(
            metavar="CATALOG",
            callback=_location,
            help=f"Root catalog: {_PLACES}, or its catalog.json.",
        ),
    ],
    json_: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False,
    verbose: Verbose = 0,
) -> None:
    """Validate every catalog, collection and item against the STAC schemas, offline.

    Each problem names the field and the schema rule it breaks."""
    from byod.keys import ROOT_KEY
    from byod.validate import validate_catalog

    if catalog.endswith(".json") and not catalog.endswith(ROOT_KEY):
        _usage_error(f"{catalog}: not a root catalog; byod validate checks a whole catalog from "
                     f"its root: give its folder or {ROOT_KEY}{_root_of(catalog)}")  # fmt: skip
    count, problems = validate_catalog(catalog)  # no catalog there: ConfigurationError
    with _output():
        if json_:
            data = {"checked": count, "invalid": [p.__dict__ for p in problems]}
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            sys.stdout.flush()
        else:
            out = _console()
            for p in problems:
                out.print(f"[red]invalid[/] {p.kind} {_shown(p.href)}: {_shown(p.message)}",
                          soft_wrap=True)  # fmt: skip
            verdict = "[green]valid[/]" if not problems else f"[red]{len(problems)} invalid[/]"
            out.print(f"{count} STAC objects checked: {verdict}")
    raise typer.Exit(EXIT_REJECTED if problems else EXIT_OK)


def _root_of(path: str) -> str:
    """` (here: ROOT)`: the root catalog a local STAC file links to, if it says (else "")."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        href = next(link["href"] for link in data["links"] if link.get("rel") == "root")
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return ""
    if "://" in href:
        return f" (here: {href})"
    return f" (here: {Path(path).parent.joinpath(href).resolve()})"


@command()
@_ends_cleanly
def search(
    catalog: Catalog,
    collection: Collections = None,
    bbox: Annotated[
        str | None,
        typer.Option(
            metavar="W,S,E,N",
            help="Degrees (W > E crosses 180°; 0..360 longitudes accepted).",
        ),
    ] = None,
    datetime_: Annotated[
        str | None,
        typer.Option(
            "--datetime",
            metavar="DATETIME",
            help="Instant, day or START/END (ISO 8601, '..' open, START <= END).",
        ),
    ] = None,
    max_cloud: Annotated[
        float | None, typer.Option(min=0, max=100, help="Largest eo:cloud_cover, percent.")
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="CQL2 text or JSON filter.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many items.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print an ItemCollection (GeoJSON).")
    ] = False,
    verbose: Verbose = 0,
) -> None:
    """Search a catalog by space, time, cloud cover and CQL2, from its geoparquet index."""
    from rich.table import Table

    from byod.analysis import search as run_search

    try:
        found = run_search(catalog, collections=collection, bbox=bbox, datetime=datetime_,
                           max_cloud=max_cloud, filter=filter_, limit=limit)  # fmt: skip
    except (ConfigurationError, FileNotFoundError) as exc:  # a query or catalog that fails
        _usage_error(str(exc))
    if json_:
        with _output():
            sys.stdout.write(json.dumps(found.to_dict(transform_hrefs=False), indent=2) + "\n")
            sys.stdout.flush()
        return
    out = _console()
    table = Table(title=f"{len(found)} item(s)")
    for column in ("collection", "id", "datetime", "cloud %", "bbox"):
        # Ids are what users copy, times are read whole: never cut or folded.
        table.add_column(column, no_wrap=column in ("id", "datetime"), overflow="fold")
    for item in found:
        props = item.properties
        when = _when(props)
        cloud = props.get("eo:cloud_cover")
        table.add_row(_shown(item.collection_id or ""), _shown(item.id), str(when),
                      "" if cloud is None else f"{cloud:g}",
                      ", ".join(f"{v:.3f}" for v in item.bbox or []))  # fmt: skip
    # An id wider than the terminal leaves: the table drawn at its natural width (every
    # cell on one line), which the terminal wraps.
    size = out.measure(table, options=out.options.update(width=10**6))
    if size.minimum > out.width:
        out = _console(width=size.maximum)
    with _output():
        out.print(table)


def _when(props: dict[str, Any]) -> str:
    """The table's time: the instant, START/END, or "unknown" (byod.temporal.shown_time)."""
    from byod.temporal import shown_time

    return shown_time(props)


@command()
@_ends_cleanly
def export(
    catalog: Catalog,
    format_: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="ndjson: items.ndjson (pypgstac load); parquet: one stac-geoparquet file "
            "per collection (Planetary Computer Pro bulk ingestion).",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            metavar="FOLDER",
            callback=_local_folder,
            help="New folder (local) for the files (and collections.ndjson).",
        ),
    ],
    collection: Collections = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace OUT if it holds an earlier export (never other files)."
        ),
    ] = False,
    verbose: Verbose = 0,
) -> None:
    """Export items and collections for catalogs with an API: pgstac, Planetary Computer Pro.

    Items get absolute asset hrefs and no static-catalog links."""
    from byod.analysis import catalog_store
    from byod.export import export_catalog

    store, _ = catalog_store(catalog, None)
    done = export_catalog(store, Path(out), format_, collection, overwrite=overwrite)
    files = ", ".join(map(_shown, done.files))
    _console().print(f"{done.items} item(s) of {done.collections} collection(s) exported to "
                    f"{_shown(str(done.folder))}: {files}", soft_wrap=True)  # fmt: skip


@command()
@_ends_cleanly
def browse(
    catalog: Catalog,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free).")
    ] = 8000,
    out: Annotated[
        Path | None,
        typer.Option(
            callback=_location, help="Keep the pages in this folder \\[default: a temporary one]."
        ),
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Render the catalog as HTML pages (thumbnails inlined) and serve them on localhost."""
    import shutil
    import tempfile

    from byod.analysis import catalog_store
    from byod.keys import ROOT_KEY

    if out is not None:  # a usage error before anything is served or written
        existing = next((p for p in (out, *out.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            under = "" if existing == out else f" ({existing} is a file)"
            _usage_error(f"--out {out}: a file, not a folder{under}; give a folder for "
                         "the pages")  # fmt: skip
    store, _ = catalog_store(catalog, None)
    if not store.exists(ROOT_KEY):
        _usage_error(f"no catalog at {store.href(ROOT_KEY)}")
    folder = out or Path(tempfile.mkdtemp(prefix="byod-browse-"))
    try:
        _serve_site(store, catalog, folder, port)
    finally:  # pages in a temp folder of its own go with it, however browsing ends
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)


def _serve_site(store: Store, catalog: str, folder: Path, port: int) -> None:
    """Render the catalog's pages into `folder` and serve them on 127.0.0.1:`port` until
    Ctrl-C; a busy port or a catalog that cannot be rendered is a usage error."""
    import errno
    import signal
    import time

    from byod.browse import render_site, serve

    try:  # the port first: a busy one is known before the pages are rendered
        server = serve(folder, port)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        _usage_error(f"port {port} on 127.0.0.1: {exc.strerror}; choose another with --port "
                     "(0: any free)")  # fmt: skip
    try:
        render_site(store, folder)
    except (FileNotFoundError, ValueError) as exc:
        server.server_close()
        _usage_error(str(exc))
    # `kill` and a closed terminal (or hub tab) stop it as Ctrl-C does: pages removed. Set
    # before the URL is printed: whoever read it may stop it at once.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_serving)
    try:  # (a stop that comes as soon as the URL is out is inside the try, too)
        # One line, never folded: the URL is what users copy.
        _console().print(f"browse {catalog} at http://127.0.0.1:{server.server_address[1]}/ "
                        "(Ctrl-C stops)", soft_wrap=True)  # fmt: skip
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
        server.server_close()


def _stop_serving(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


@command()
@_ends_cleanly
def sign(
    target: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="A blob URL (https://ACCOUNT.blob.core.windows.net/..., az://container/blob or "
            "abfs(s)://container/blob), "
            "or an item's JSON (a file or URL) whose assets are signed.",
        ),
    ],
    expiry: Annotated[int, typer.Option(min=60, help="Seconds the signature stays valid.")] = 3600,
    verbose: Verbose = 0,
) -> None:
    """Print a short-lived read-only SAS URL for a private blob, or an item with signed assets.

    Credentials come from the environment (AZURE_STORAGE_CONNECTION_STRING, ...)."""
    from datetime import timedelta

    from pystac.stac_io import DefaultStacIO

    from byod.azure import resolve_access
    from byod.signing import NothingToSign, SignedStacIO, asset_hrefs, sign_item_json
    from byod.signing import sign as sign_any

    remote = target.startswith(("http://", "https://", "az://", "abfs://", "abfss://"))
    only = (f"{target}: only Azure blob URLs can be signed (https://ACCOUNT.blob.core."
            "windows.net/... or az://container/blob), or an item's JSON")  # fmt: skip
    if not remote and not target.endswith(".json"):
        _usage_error(only)
    local = None if remote else DefaultStacIO().read_json(target)  # no credentials needed
    is_item = local is not None and local.get("type") == "Feature"
    blobs = [h for h in asset_hrefs(local, target) if container_of(h)] if is_item and local else []
    if local is not None and is_item and not blobs:
        _usage_error(f"{only}; none of this item's assets is a blob URL")  # a local catalog's
    try:
        access = resolve_access(AzureOptions())
    except ConfigurationError:
        # Without credentials a URL of another host is still no blob: say that, not
        # "no credentials" (a blob URL of Azure or Azurite's then needs the credentials).
        if remote and container_of(target) is None:
            _usage_error(only)
        raise
    raw = local if local is not None else (
        SignedStacIO(access).read_json(target) if target.endswith(".json") else None)  # fmt: skip
    if raw is not None and raw.get("type") == "Feature":
        # The JSON as written, hrefs signed: pystac's read would migrate it (proj:epsg gone).
        try:
            signed = sign_item_json(raw, target, timedelta(seconds=expiry), access)
        except NothingToSign as exc:
            _usage_error(str(exc))
        sys.stdout.write(json.dumps(signed, indent=2) + "\n")
        return
    if not remote:
        _usage_error(f"{target}: not a STAC item; only blob URLs and items can be signed")
    url = sign_any(target, timedelta(seconds=expiry), access)
    if url == target:  # sign_href leaves URLs outside the account as they are
        _usage_error(f"{target}: not a blob of storage account {access.account_name!r}; "
                     "only Azure blob URLs of that account can be signed")  # fmt: skip
    sys.stdout.write(url + "\n")


def _print_summary(report: Report) -> None:
    from rich.cells import cell_len
    from rich.table import Table

    from byod.temporal import UNKNOWN_NOTE, WRITTEN_NOTE

    # Row notes the table shows: the input has no acquisition time, or only its write time.
    time_notes = (UNKNOWN_NOTE.split(":", 1)[0], WRITTEN_NOTE.split(",", 1)[0])
    out = _console()
    counts = report.counts()
    table = Table(title=f"byod ingest: {_shown(report.collection)}", show_lines=False)
    # Item ids are what users copy: their own column, never cut or folded; inputs fold
    # (shown whole), reasons and notes wrap.
    table.add_column("input", overflow="fold")
    table.add_column("status")
    table.add_column("item", no_wrap=True)
    table.add_column("reason / note", overflow="fold")
    for row in report.rows:
        if row.status is Status.UNCHANGED and len(report.rows) > 50:
            continue  # keep long re-runs readable; the JSON report has every row
        # Names and messages come from inputs: shown, never interpreted (`_shown`).
        lines = ([f"{row.reason}: {_shown(row.message or '')}"] if row.status is Status.REJECTED
                 else [_shown(row.message)] if row.message else [])  # fmt: skip
        # Time-less or write-time-only inputs: say so, and how to give the time.
        lines += [f"[yellow]{_shown(n)}[/]" for n in row.notes if n.startswith(time_notes)]
        style = _STATUS_STYLE[row.status]
        table.add_row(_shown(row.input), f"[{style}]{row.status}[/]",
                      "\n".join(map(_shown, row.item_ids)), "\n".join(lines))  # fmt: skip
    # Ids wider than the terminal leave: the table as wide as its longest id needs beside
    # 20 columns for the input and for the reason (the terminal wraps), as `byod search`
    # does; rich would otherwise cut the id. 13: borders and padding, 8: the status.
    longest = max((cell_len(_shown(i)) for r in report.rows for i in r.item_ids), default=0)
    if longest + 13 + 8 + 2 * 20 > out.width:
        out = _console(width=longest + 13 + 8 + 2 * 20)
    out.print(table)
    out.print(", ".join(f"{n} {s}" for s, n in counts.items())
              + f"; catalog: {_shown(report.catalog)}", soft_wrap=True)  # fmt: skip
    if report.storage:
        style = "bold red" if report.region_overridden else "dim"
        out.print(f"[{style}]storage: {_shown(report.storage)}[/]")
    # The run's notes (conversions capped by --memory-budget, an input changed while it was
    # ingested, files ignored and why): the first few here, every one in the JSON report.
    for note in report.notes[:SHOWN_NOTES]:
        out.print(f"[yellow]note:[/] {_shown(note)}", soft_wrap=True)
    if len(report.notes) > SHOWN_NOTES:
        out.print(f"[dim]{len(report.notes) - SHOWN_NOTES} more notes in the JSON report "
                  "(--report FILE or --json)[/]")  # fmt: skip


SHOWN_NOTES = 10  # run notes printed under the table


# `byod ingest`'s parameter of each settings field (its dotted path, `setting_paths`) where
# the names differ; the others are named as their field. The options are never listed
# twice: `_typed_settings` reads them from the model, and tests/test_flows.py checks that
# every field has an option (or is a listed exception) and every option a field.
_PARAMETER = {
    "time.datetime": "datetime_",
    "time.pattern": "datetime_pattern",
    "time.order": "datetime_order",
    "time.require": "require_datetime",
    "clouds.cover": "cloud_cover",
    "clouds.rule": "cloud_rule",
    "clouds.band": "cloud_band",
    "clouds.order": "cloud_order",
    "timeout_s": "timeout",
    "max_memory_mb": "max_memory",
    "memory_budget_mb": "memory_budget",
    "disk_budget_mb": "disk_budget",
    "publish_every_inputs": "publish_every",
    "config_file": "config",
    "azure.account_name": "azure_account",
    "azure.region": "azure_region",
    "azure.allow_any_region": "allow_any_region",
    "azure.request_timeout_s": "request_timeout",
}
# Given apart from the other settings: SOURCE is the argument, --config where byod.yaml is.
_NOT_OPTIONS = {"source", "config_file"}
_CSV = {"time.order", "clouds.order"}  # comma-separated on the command line


def _typed_settings(ctx: typer.Context) -> dict[str, Any]:
    """The options typed on the command line as settings, nested as the model is
    (`{"clouds": {"rule": "fmask"}}`): only these override the dataset's byod.yaml, field
    by field (`config.build_settings`)."""
    typed: dict[str, Any] = {}
    for path in setting_paths(IngestSettings):
        name = _PARAMETER.get(path, path)
        if path in _NOT_OPTIONS or name not in ctx.params or not _typed(ctx, name):
            continue
        value = ctx.params[name]
        if path in _CSV:
            value = _csv(value)
        elif isinstance(value, StrEnum):  # --compression: the model takes its text
            value = value.value
        *sections, field = path.split(".")
        place = typed
        for section in sections:
            place = place.setdefault(section, {})
        place[field] = value
    return typed


def _typed(ctx: typer.Context, name: str) -> bool:
    # By name: typer vendors its own click, whose ParameterSource is not click's class.
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", None) == "COMMANDLINE"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _usage_error(message: str) -> NoReturn:
    _fail(ConfigurationError(message))
