"""Run each input's work in its own worker process, bounded in time and memory.

One pathological file (a decompression bomb, a GDAL hang, a segfault) costs its own process,
never the run: a worker over its time is killed, one over its address-space limit fails its
allocation, and both become rejections. Processes come from a forkserver, so each starts as a
cheap fork of a clean, pre-imported interpreter (no threads of the parent inherited).

Workers import only byod's code (issue 11). PITFALLS: Python 3.11's forkserver is started
with `python -c`, which puts the working directory first on its import path (a `secrets.py`
there ran while byod was preloaded), and each child imports the caller's `__main__` again
(a script without an `if __name__ == "__main__":` guard ran again in every worker, issue 12).
So the forkserver is started with PYTHONSAFEPATH (Python 3.11's `-P`: nothing prepended to
the path), and children get a preparation without the caller's `__main__` and with an import
path without the working directory or the script's folder (`_Popen`). Each worker then drops
credentials and network access before it reads an input (`worker_env.worker_environment`), and
is confined by the kernel to its source and work folders (`confine`, Landlock).

Inside a daemonic process (a Dask worker with default settings) multiprocessing refuses to
start children (PITFALLS), so there each worker is a `python -P -m byod.subworker` started
with `subprocess` instead: the job is pickled to its stdin, its results come back on an
inherited pipe, and it gets the same bounds (time, RLIMIT_AS, death with its parent), the
same safe import path, an environment without credentials, and the same confinement.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import io
import logging
import multiprocessing as mp
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver, popen_forkserver, process, reduction, spawn
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerProcess
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from byod import confine
from byod.reasons import Reason, RejectedInput
from byod.worker_env import worker_env, worker_environment

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

_CONTEXT = mp.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["byod.work"])
_FORKSERVER_LOCK = threading.Lock()


def _worker_process_env() -> dict[str, str]:
    """The environment a worker process starts with: the allowlist of `worker_env.worker_env`
    (no credential under any name, not even in /proc/PID/environ), PYTHONSAFEPATH=1 so that
    `python -c`/`-m` prepends no working directory, and no relative PYTHONPATH entries."""
    env = worker_env(os.environ)
    env["PYTHONSAFEPATH"] = "1"
    absolute = [e for e in env.pop("PYTHONPATH", "").split(os.pathsep) if os.path.isabs(e)]
    if absolute:
        env["PYTHONPATH"] = os.pathsep.join(absolute)
    return env


def _spawn_passfds(env: dict[str, str], path: str, args: list[str], passfds: Iterable[int]) -> int:
    """multiprocessing.util.spawnv_passfds with an environment of its own (the original
    passes this process's whole environment)."""
    popen = subprocess.Popen(args, executable=path, pass_fds=tuple(sorted(map(int, passfds))),
                             env=env, close_fds=True)  # fmt: skip
    # Handed over to multiprocessing, which waits for it: marked done so that subprocess
    # neither reaps it nor warns about it.
    popen.returncode = 0
    return popen.pid


def _start_forkserver() -> None:
    """Start the (process-wide) forkserver, if it is not running, with the environment of a
    worker (`_worker_process_env`: the allowlist, a safe import path), so that its children
    never hold a credential, not even in the environment they were forked with. This
    process's environment is left alone; only multiprocessing's spawn of the server is
    given that environment, while the server starts."""
    with _FORKSERVER_LOCK:
        util = popen_forkserver.util  # type: ignore[attr-defined]
        spawnv_passfds = util.spawnv_passfds
        util.spawnv_passfds = functools.partial(_spawn_passfds, _worker_process_env())
        # Spawned with SIGINT ignored, which Python keeps at start-up and the forkserver's
        # children inherit: a Ctrl-C to the process group stops the parent only (it decides).
        main = threading.current_thread() is threading.main_thread()
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            forkserver.ensure_running()
        finally:
            util.spawnv_passfds = spawnv_passfds
            if main:
                signal.signal(signal.SIGINT, old_int)


def start_forkserver() -> None:
    """Start the forkserver now, when the caller knows workers will run, so that its start
    (a Python that imports GDAL, rasterio and rio-cogeo: `byod.work`, about 0.5 s) overlaps
    what the caller does before the first worker (its own imports of GDAL and the item
    builder). Nothing in a daemonic process, which starts no forkserver (`_Subprocess`)."""
    if not mp.current_process().daemon:
        _start_forkserver()


def _safe_preparation(name: str, work_module: str | None) -> dict[str, Any]:
    """What a child is told of its parent, minus what would import the caller's code: no
    `__main__` to re-import, no working directory or script folder on the import path. The
    folder that holds the worker function's own module is kept, last (a test's module)."""
    data = spawn.get_preparation_data(name)
    data.pop("init_main_from_name", None)
    data.pop("init_main_from_path", None)
    data["sys_path"] = _safe_sys_path(data["sys_path"], work_module)
    return data


def _safe_sys_path(sys_path: list[str], work_module: str | None) -> list[str]:
    """`sys_path` without relative entries, the working directory or the script's folder,
    plus (last) the folder that provides the worker function's module."""
    original = getattr(process, "ORIGINAL_DIR", None) or os.getcwd()
    unsafe = {os.path.realpath(p) for p in (os.getcwd(), original)}
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file:
        unsafe.add(os.path.realpath(os.path.dirname(os.path.abspath(main_file))))
    paths = [p for p in sys_path if os.path.isabs(p) and os.path.realpath(p) not in unsafe]
    home = _module_root(work_module)
    if home is not None and home not in paths:
        paths.append(home)
    return paths


def _module_root(module_name: str | None) -> str | None:
    """The import-path entry that provides `module_name` (e.g. a tests folder's parent)."""
    if module_name is None or module_name == "__main__":
        return None
    file = getattr(sys.modules.get(module_name), "__file__", None)
    if file is None:
        return None
    root = Path(file).resolve().parent
    for _ in range(module_name.count(".") + (1 if file.endswith("__init__.py") else 0)):
        root = root.parent
    return str(root)


class _Popen(popen_forkserver.Popen):
    """The forkserver's Popen, sending `_safe_preparation` instead of the whole parent state.

    `_launch` follows CPython 3.11's `multiprocessing/popen_forkserver.py` line for line, with
    `spawn.get_preparation_data` replaced."""

    def _launch(self, process_obj: Any) -> None:
        work = process_obj._args[1] if len(process_obj._args) > 1 else None
        prep_data = _safe_preparation(process_obj._name, getattr(work, "__module__", None))
        buf = io.BytesIO()
        # CPython's private helpers (set_spawning_popen, connect_to_new_process, util) are not
        # in typeshed's stubs of these modules.
        popen_forkserver.set_spawning_popen(self)  # type: ignore[attr-defined]
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            popen_forkserver.set_spawning_popen(None)  # type: ignore[attr-defined]
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        util = popen_forkserver.util  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:  # multiprocessing's name
        return _Popen(process_obj)


@dataclass(frozen=True)
class Done(Generic[J, R]):
    job: J
    result: R | None = None
    rejection: RejectedInput | None = None
    seconds: float = 0.0


@dataclass
class _Running:
    job: Any
    label: str
    process: Any
    conn: Connection
    started: float


def run_bounded(
    jobs: list[tuple[str, J]],
    work: Callable[[J, Callable[[str], None]], R],
    *,
    workers: int,
    timeout_s: float,
    max_memory_mb: int,
    on_stage: Callable[[str, str], None] = lambda label, stage: None,
    before_start: Callable[[J], None] = lambda job: None,
) -> Iterator[Done[J, R]]:
    """Yield each (label, job)'s outcome as it finishes; at most `workers` at once.

    `before_start` runs in this process just before a job's worker starts (to fetch its
    input, say); a RejectedInput it raises rejects that job without starting a worker.
    `work` must be a module-level function of an importable module, not of `__main__`: the
    caller's `__main__` is never imported in a worker (a job whose function cannot be found
    is reported as crashed). A job that names its folders (`Confined`) runs in a worker
    confined by Landlock to reading its source folder and the runtime and writing its
    `workdir` (byod.confine); a read refused there rejects the job as outside_source.
    """
    pending = list(reversed(jobs))
    running: list[_Running] = []
    try:
        yield from _run(pending, running, work, workers, timeout_s, max_memory_mb, on_stage,
                        before_start)  # fmt: skip
    finally:  # closed early or interrupted (SIGINT/SIGTERM in the parent): stop the workers
        for run in running:
            _reap(run, kill=True)


def _run(
    pending: list[tuple[str, J]],
    running: list[_Running],
    work: Callable[[J, Callable[[str], None]], R],
    workers: int,
    timeout_s: float,
    max_memory_mb: int,
    on_stage: Callable[[str, str], None],
    before_start: Callable[[J], None],
) -> Iterator[Done[J, R]]:
    while pending or running:
        while pending and len(running) < workers:
            label, job = pending.pop()
            try:
                before_start(job)
            except RejectedInput as exc:
                yield Done(job, rejection=exc)
                continue
            with signals_held():  # a start cut in half leaves a worker with no orders
                recv, send = _CONTEXT.Pipe(duplex=False)
                if mp.current_process().daemon:  # e.g. a Dask worker: no multiprocessing
                    process: Any = _Subprocess(send, work, job, label, max_memory_mb)
                else:
                    _start_forkserver()
                    process = _Process(
                        target=_child, args=(send, work, job, label, max_memory_mb), daemon=True
                    )
                    process.start()
                send.close()
                running.append(_Running(job, label, process, recv, time.monotonic()))
                if isinstance(process, _Subprocess):
                    process.send_orders()  # after `send` is closed here: EOF when it dies
            on_stage(label, "queued")
        if not running:
            continue
        now = time.monotonic()
        next_deadline = min(r.started + timeout_s for r in running)
        ready = wait([r.conn for r in running] + [r.process.sentinel for r in running],
                     timeout=max(0.0, next_deadline - now))  # fmt: skip
        for run in list(running):
            outcome = _poll(run, ready, timeout_s, on_stage)
            if outcome is not None:
                running.remove(run)
                yield outcome


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive in the block are raised again after it, to the handlers
    in place before (main thread only): a handler that raises (a Ctrl-C) inside
    `Process.start` would leave a forked worker waiting for orders that never come, and its
    traceback on the terminal; one inside an import leaves the module half-imported in
    `sys.modules`, broken for the rest of the process (a notebook's next run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    saved = {s: signal.signal(s, lambda n, _: held.append(n)) for s in (signal.SIGINT,
                                                                       signal.SIGTERM)}  # fmt: skip
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        for number in held[:1]:
            signal.raise_signal(number)


def _poll(
    run: _Running, ready: list[Any], timeout_s: float, on_stage: Callable[[str, str], None]
) -> Done[Any, Any] | None:
    elapsed = time.monotonic() - run.started
    died = False
    if run.conn in ready or run.process.sentinel in ready:
        try:
            while run.conn.poll():
                kind, payload = run.conn.recv()
                if kind == "stage":
                    on_stage(run.label, payload)
                    continue
                _reap(run)
                if kind == "ok":
                    return Done(run.job, result=payload, seconds=elapsed)
                return Done(run.job, rejection=RejectedInput(*payload), seconds=elapsed)
        except EOFError:
            died = True  # the pipe closed with no result: the worker is gone
        # A worker that exited is done whether or not its pipe said so.
        died = died or run.process.sentinel in ready
    if died:
        _reap(run)
        code = run.process.exitcode
        return Done(run.job, rejection=RejectedInput(
            Reason.CRASHED, f"{run.label}: the worker died (exit code {code}) while reading it"
        ), seconds=elapsed)  # fmt: skip
    if elapsed >= timeout_s:
        _reap(run, kill=True)
        return Done(run.job, rejection=RejectedInput(
            Reason.TIMEOUT, f"{run.label}: took longer than {timeout_s:g} s (--timeout); stopped"
        ), seconds=elapsed)  # fmt: skip
    return None


def _reap(run: _Running, kill: bool = False) -> None:
    if kill and run.process.is_alive():
        run.process.kill()
    run.process.join(timeout=10)
    run.conn.close()


class _Subprocess:
    """A worker started with `subprocess` (`python -P -m byod.subworker FD`), with the part
    of multiprocessing.Process's interface `_run` uses: for daemonic callers (Dask workers),
    which multiprocessing refuses children.

    Its import path is the caller's made safe (`_safe_sys_path`, PYTHONSAFEPATH and `-P`: no
    working directory, no script folder, no caller `__main__`), its environment is the
    worker allowlist from the start (not even /proc/PID/environ holds a credential), and it
    runs `_child` as a forkserver worker does: RLIMIT_AS, Landlock, SIGKILL with its parent.
    """

    def __init__(
        self, send: Connection, work: Callable[..., Any], job: Any, label: str, max_memory_mb: int
    ) -> None:
        env = _worker_process_env()
        fd = send.fileno()
        self._orders = (
            _safe_sys_path(list(sys.path), getattr(work, "__module__", None)),
            pickle.dumps((work, job, label, max_memory_mb)),
        )
        self._popen = subprocess.Popen(
            [sys.executable, "-P", "-m", "byod.subworker", str(fd)],
            stdin=subprocess.PIPE, pass_fds=(fd,), env=env, close_fds=True,
        )  # fmt: skip
        self.pid = self._popen.pid
        # A pidfd is readable once the process exits: a sentinel for `wait`, as Process has.
        self.sentinel = os.pidfd_open(self.pid)

    def send_orders(self) -> None:
        """Pickle the import path, then the job, to the worker's stdin (then EOF)."""
        stdin = self._popen.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at start: seen by its sentinel
            pickle.dump(self._orders[0], stdin)
            stdin.write(self._orders[1])
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)
        if self._popen.returncode is not None and self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


class Confined(Protocol):
    """A job that names its folders: a worker may read `source_root` (None: `workdir/input`,
    where a remote input is fetched) and read and write `workdir` (byod.work.Job)."""

    workdir: Path
    source_root: Path | None


def sandbox_note() -> str | None:
    """The report's note when workers cannot be confined (no Landlock on this system), else
    None; the first call in a process also logs it as a warning (once per run)."""
    global _WARNED
    if confine.abi_version() >= 1:
        return None
    note = (
        "byod: this system has no Landlock (Linux 5.13 or newer); workers are not confined "
        "by the OS, only the parsed checks of what inputs refer to apply"
    )
    if not _WARNED:
        _WARNED = True
        log.warning(note)
    return note


_WARNED = False


def _confine(job: Any) -> None:
    """Confine this worker to what its job may read and write (byod.confine), when the job
    names its folders (`Confined`); jobs of other shapes run with the parsed checks only."""
    workdir = getattr(job, "workdir", None)
    if not isinstance(workdir, Path):
        return
    source = getattr(job, "source_root", None) or workdir / "input"
    try:
        confine.confine(read=[source], write=[workdir])
    except OSError as exc:  # a kernel that announced Landlock and then refused: never fail
        log.warning("worker not confined (%s); only the parsed checks apply", exc)


def _child(
    conn: Connection, work: Callable[..., Any], job: Any, label: str, max_memory_mb: int
) -> None:
    # The parent decides what a Ctrl-C stops (it kills its workers): no KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_forkserver()
    try:
        _child_run(conn, work, job, label, max_memory_mb)
    except (BrokenPipeError, ConnectionResetError):
        os._exit(1)  # the parent stopped (a signal) before it knew this worker: nobody to tell


def _die_with_forkserver() -> None:
    """SIGKILL this worker when its parent, the forkserver, exits (prctl PR_SET_PDEATHSIG,
    Linux): the forkserver exits with the run, so no worker outlives a stopped run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def _child_run(
    conn: Connection, work: Callable[..., Any], job: Any, label: str, max_memory_mb: int
) -> None:
    worker_environment()  # before any input is opened: no credentials, no network for GDAL
    _confine(job)  # ... and no file outside the source and the runtime, whatever opens it
    limit = max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    watch = confine.watch_denials()  # a refused read GDAL only logs still rejects the input
    try:
        result = work(job, lambda stage: conn.send(("stage", stage)))
        if watch.denied:
            raise PermissionError(errno.EACCES, "a read was refused")
        conn.send(("ok", result))
    except RejectedInput as exc:
        denied = watch.denied or confine.is_denied(exc.__cause__)
        if denied and exc.reason is not Reason.OUTSIDE_SOURCE:  # e.g. "truncated"
            conn.send(("rejected", _failure(exc, label, max_memory_mb, denied=True)))
        else:
            conn.send(("rejected", (exc.reason, exc.message)))
    except Exception as exc:  # noqa: BLE001 - sorted below by what failed
        conn.send(("rejected", _failure(exc, label, max_memory_mb, watch.denied > 0)))
    finally:
        conn.close()


def _failure(
    exc: BaseException, label: str, max_memory_mb: int, denied: bool = False
) -> tuple[Reason, str]:
    """The rejection for a worker's exception: a read the sandbox refused (`denied`: one GDAL
    logged; or `confine.is_denied(exc)`) is outside_source, naming no path; then memory, GDAL
    and unexpected errors."""
    # Here, in the worker (GDAL preloaded), not at the top: the parent imports this module
    # before GDAL, to start the forkserver early (`start_forkserver`).
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    from byod.rasters import is_out_of_memory

    if denied or confine.is_denied(exc):
        return Reason.OUTSIDE_SOURCE, (
            f"{label}: refers to a file outside the source folder (the worker's sandbox refused "
            "to read it); only files inside the source folder may be read"
        )
    if isinstance(exc, MemoryError) or is_out_of_memory(exc):
        # GDAL's allocation failure may be chained in a RasterioError, or a CPLE_OutOfMemoryError.
        return Reason.MEMORY_LIMIT, _memory_message(label, max_memory_mb)
    if isinstance(exc, (RasterioError, CPLE_BaseError)):  # CPLE_*: a GDAL error raised bare
        return Reason.UNREADABLE, f"{label}: GDAL could not read it ({exc})"
    # One input's bug must not end the run; it is reported.
    log.debug("worker failed on %s\n%s", label, traceback.format_exc())
    return Reason.CRASHED, f"{label}: unexpected error {exc!r}"


def _memory_message(label: str, max_memory_mb: int) -> str:
    return f"{label}: needed more than {max_memory_mb} MB (--max-memory); stopped"
