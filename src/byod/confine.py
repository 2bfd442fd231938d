"""Confine a worker process at the OS level with Landlock: read only its input and the runtime.

Parsing a VRT or a NetCDF file will never see every file GDAL or HDF5 may open (issue 11:
processed-VRT arguments, inline VRT strings, open options, sidecars of a VRT's sources, HDF5
external storage). So each worker, right after its fork and before it touches an input, asks
the kernel to refuse every filesystem access outside:

- reading: the input's source folder, the Python runtime (prefixes, the import path), the
  system's libraries (`/usr`, `/lib*`), GDAL's and PROJ's data folders, the few `/etc` files
  the C library and time zones need (`SYSTEM_FILES`), the process's own `/proc/self`;
- writing: its work folder (COGs, rio-cogeo's temp file, staged copies) and `/dev/null`.

Anything else fails with EACCES, whatever code path opens it. With ABI 4 or newer, TCP bind and
connect are refused too; with ABI 6 or newer, signals and abstract Unix sockets to processes
outside the worker.

A small ctypes wrapper on the three system calls, as the kernel documents them
(Documentation/userspace-api/landlock.rst, `include/uapi/linux/landlock.h`):
`landlock_create_ruleset` (444), `landlock_add_rule` (445), `landlock_restrict_self` (446),
the same numbers on every architecture, after `prctl(PR_SET_NO_NEW_PRIVS, 1)`. The PyPI
bindings (`landlock` 1.0.0.dev5, `landlockpy` 0.2, `py-landlock` 0.1) were judged too young
for a security wall (pre-release, single maintainer, months old) for some 100 lines of ABI.

ABI handling ("best effort", as the kernel docs advise): `landlock_create_ruleset(NULL, 0,
LANDLOCK_CREATE_RULESET_VERSION)` gives the ABI; only the rights that ABI knows are handled
(REFER from 2, TRUNCATE from 3, network from 4, IOCTL_DEV from 5, scopes from 6), and the
ruleset attribute is passed at the size that ABI reads. No Landlock (kernel < 5.13, disabled
at boot, another OS): `confine` returns False and byod falls back to its parsed checks
(`untrusted.py`) alone.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

# include/uapi/linux/landlock.h
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# The file-system rights (LANDLOCK_ACCESS_FS_*), bit n the n-th in landlock.h: REFER from
# ABI 2, TRUNCATE from 3, IOCTL_DEV from 5.
(EXECUTE, WRITE_FILE, READ_FILE, READ_DIR, REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR,
 MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM, REFER, TRUNCATE,
 IOCTL_DEV) = (1 << bit for bit in range(16))  # fmt: skip
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

# Rights a rule may grant on a regular file (others are for directories only: EINVAL).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | REFER
         | TRUNCATE)  # fmt: skip

# The /etc files and system folders a worker's C libraries read at run time (dynamic loader
# cache, time zone, character sets); not /etc as a whole (passwd, shadow, keys ...).
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/timezone")
SYSTEM_TREES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32",
                "/usr/share/zoneinfo", "/usr/share/proj", "/usr/share/gdal",
                "/usr/local/lib", "/usr/local/share/proj", "/usr/local/share/gdal",
                "/sys/devices/system/cpu", "/sys/fs/cgroup", "/proc/self", "/proc/meminfo",
                "/proc/cpuinfo", "/dev/urandom", "/dev/random", "/dev/zero")  # fmt: skip
DEVICES_WRITABLE = ("/dev/null",)
# Environment variables naming data folders GDAL, PROJ and friends read.
DATA_VARIABLES = ("GDAL_DATA", "PROJ_DATA", "PROJ_LIB", "GDAL_DRIVER_PATH", "HDF5_PLUGIN_PATH")


class _PathBeneath(ctypes.Structure):
    _pack_ = 1  # `struct landlock_path_beneath_attr` is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def abi_version() -> int:
    """The running kernel's Landlock ABI version; 0 when Landlock is unavailable (another OS,
    a kernel before 5.13, or Landlock not enabled among the LSMs: EOPNOTSUPP/ENOSYS)."""
    libc = _libc()
    if libc is None:
        return 0
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(_CREATE_RULESET_VERSION))  # fmt: skip
    return max(0, int(version))


def handled_fs(abi: int) -> int:
    """The filesystem rights an ABI version knows (kernel docs, "Compatibility")."""
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def runtime_paths() -> list[Path]:
    """What the Python runtime and the installed libraries need to read: sys.prefix, the base
    and exec prefixes, every absolute import-path entry (an editable install's `src`), the
    data folders named by GDAL_DATA/PROJ_DATA/..., and the system's libraries."""
    names: list[str] = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    names += [p for p in sys.path if p and os.path.isabs(p)]
    names += [os.environ[v] for v in DATA_VARIABLES if os.environ.get(v)]
    names += [*SYSTEM_FILES, *SYSTEM_TREES]
    # The interpreter binary is often a link into another installation (a venv's python).
    names.append(os.path.dirname(os.path.realpath(sys.executable)))
    return [Path(n) for n in dict.fromkeys(names)]


def confine(read: Iterable[Path], write: Iterable[Path]) -> int:
    """Restrict this process (and the threads and children it starts from now on) to reading
    `read` plus `runtime_paths()`, and reading and writing `write` plus `/dev/null`.

    Returns the Landlock ABI version enforced, or 0 when Landlock is unavailable (nothing is
    restricted then; the caller decides how to warn). Paths that do not exist are skipped.
    Irreversible for the process. Raises OSError when the kernel refuses a step after it said
    Landlock is there (a bug, not a missing feature).
    """
    abi = abi_version()
    libc = _libc()
    if abi < 1 or libc is None:
        return 0
    attr = _RulesetAttr(handled_fs(abi), 0, 0)
    size = 8  # ABI 1-3 read handled_access_fs only
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP  # no rule: no TCP at all
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    ruleset = _check(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                                  ctypes.c_uint32(0)), "landlock_create_ruleset")  # fmt: skip
    try:
        for path in [*runtime_paths(), *map(Path, read)]:
            _allow(libc, ruleset, path, READ & attr.handled_access_fs)
        for path in [*map(Path, write), *map(Path, DEVICES_WRITABLE)]:
            _allow(libc, ruleset, path, WRITE & attr.handled_access_fs)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc: ctypes.CDLL, ruleset: int, path: Path, rights: int) -> None:
    """Add one path-beneath rule; a missing path is skipped (nothing there to read)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        _check(libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule),
                            ctypes.c_uint32(0)), f"landlock_add_rule({path})")  # fmt: skip
    finally:
        os.close(fd)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno() or errno.EINVAL
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


# How a refused read shows up: errno EACCES/EPERM on an OSError, or GDAL's and HDF5's text.
_DENIED_TEXT = ("permission denied", "operation not permitted")


def is_denied(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from) is a read the sandbox refused:
    an OSError with EACCES/EPERM, or a GDAL/HDF5 error whose text says so."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
            return True
        if any(text in str(exc).lower() for text in _DENIED_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class DenialWatch(logging.Handler):
    """Counts the GDAL messages (rasterio logs the ones it does not raise) that report a
    refused read: a VRT source or an overview that cannot be opened may only be logged while
    the read goes on with nodata, so a worker checks `denied` after its work too."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.denied = 0

    def emit(self, record: logging.LogRecord) -> None:
        if any(text in record.getMessage().lower() for text in _DENIED_TEXT):
            self.denied += 1


def watch_denials(loggers: Iterable[str] = ("rasterio", "rio_cogeo")) -> DenialWatch:
    """Attach a DenialWatch to `loggers` and let their INFO records reach it (rasterio logs
    the GDAL failures it does not raise at INFO, "GDAL signalled an error")."""
    watch = DenialWatch()
    for name in loggers:
        logger = logging.getLogger(name)
        logger.addHandler(watch)
        logger.setLevel(logging.INFO)
    return watch
