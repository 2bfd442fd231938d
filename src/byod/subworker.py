"""One bounded worker started with `subprocess`: `python -P -m byod.subworker FD`.

`byod.runner` starts it instead of a forkserver child where multiprocessing may not start
children: inside a daemonic process, as Dask workers are with default settings. It reads its
import path and then its job (`work`, `job`, `label`, `max_memory_mb`), both pickled, from
stdin, and sends its stages and its result on the pipe inherited as file descriptor FD, as a
forkserver worker does (`runner._child`: credentials dropped, Landlock, RLIMIT_AS).
"""

from __future__ import annotations

import signal
import sys

# First, before the slow imports: the parent decides what a Ctrl-C stops (it kills its workers).
signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str]) -> int:
    """Run the job read from stdin; exit status 2 when the orders cannot be read."""
    import pickle
    from multiprocessing.connection import Connection

    conn = Connection(int(argv[1]), readable=False)
    stdin = sys.stdin.buffer
    sys.path[:] = pickle.load(stdin)  # the caller's import path, made safe by the runner
    try:
        work, job, label, max_memory_mb = pickle.load(stdin)
    except Exception as exc:  # noqa: BLE001 - e.g. the work function's module is missing
        print(f"byod.subworker: cannot read the job: {exc!r}", file=sys.stderr)
        return 2
    from byod.runner import _child

    _child(conn, work, job, label, max_memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
