"""The `byod` command (its console script) and `python -m byod`: the CLI (`byod.cli.app`),
ended without the interpreter's teardown of its modules.

When a command has ended with its exit code, what Python still does at exit that anyone
could see is done before this module's handler runs: threads joined, then every other
atexit handler (this one is registered first, before anything else is imported, so it
runs last: logging's flush, multiprocessing's, tempfile's clean-ups), and the standard
streams are flushed here. What is left is freeing some 600 modules object by object:
0.1 s, a fifth of a no-op `byod ingest` over 1,000 inputs on the 2-core machine
(issue 13). So the process ends there, with `os._exit` and the command's exit code.
Anything but a `SystemExit` (a Ctrl-C before the CLI handles signals) ends as Python
ends it, teardown included. Tests call `byod.cli.app` in-process and never get here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

_exit_status: int | None = None  # the command's; None: Python ends the process its way


def main() -> None:
    """Run the CLI on `sys.argv` and exit with its code."""
    global _exit_status
    atexit.register(_exit_without_teardown)  # the first registered: the last to run
    from byod.cli import app

    try:
        app()
    except SystemExit as exc:
        _exit_status = _status(exc.code)
        raise


def _status(code: object) -> int:
    """The process's exit status for `SystemExit(code)`, as Python sets it: None is 0, an
    int is itself, anything else (a message Python printed to stderr) is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _exit_without_teardown() -> None:
    if _exit_status is None:
        return
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (`| head`), a closed stream: nothing more can be said.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(_exit_status)


if __name__ == "__main__":
    main()
