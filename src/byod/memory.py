"""How many conversions run at once within the run's memory budget (issue 14).

A hub's server often has 2-4 GB, shared with the user's notebook, so byod's whole process
tree (the CLI's process, multiprocessing's forkserver and the workers) must stay within
`IngestSettings.memory_budget_mb` whatever `--workers` says. Each worker holds its own
interpreter, GDAL and PROJ (most of it shared with the forkserver's pages, but counted in
each process's RSS), its share of GDAL's block cache (`cog.cache_budget`) and the
conversion's and footprint's buffers. More workers than the budget holds would only swap or
be killed; fewer run at once, and the report says so.

The figures are the peaks measured on 2,745^2 and 10,980^2 4-band inputs with 2, 4 and 8
workers (benchmarks/README.md, "Memory with more workers"): summed RSS = PARENT_MB + k x
(WORKER_MB + cache share) within 2% for k = 2, 4, 8.
"""

from __future__ import annotations

from byod.cog import cache_budget

# The CLI's process and the forkserver, MB of RSS at their peak (imports, the run's records).
PARENT_MB = 280
# One worker besides its GDAL block cache: the interpreter and libraries (about 170 MB),
# plus the footprint's and rio-cogeo's buffers of a large input (about 30 MB).
WORKER_MB = 200
MB = 1024 * 1024


def conversions_at_once(workers: int, inputs: int, budget_mb: int) -> int:
    """How many of `inputs` to convert at once: `workers` (at least 1), no more than there
    are inputs, and no more than `budget_mb` (MB, the whole tree's peak RSS) holds at
    PARENT_MB + k * (WORKER_MB + cache_budget(k)). One always runs, whatever the budget."""
    at_once = max(1, min(workers, inputs))
    while at_once > 1 and tree_mb(at_once) > budget_mb:
        at_once -= 1
    return at_once


def tree_mb(at_once: int) -> int:
    """The expected peak RSS, MB, of byod's process tree with `at_once` conversions."""
    return PARENT_MB + at_once * (WORKER_MB + cache_budget(at_once) // MB)


def capped_note(workers: int, at_once: int, budget_mb: int) -> str:
    """The report's note when the budget runs fewer conversions at once than `workers`."""
    return (f"--workers {workers}: {at_once} conversion(s) at once, what --memory-budget "
            f"{budget_mb} MB holds (about {WORKER_MB} MB a worker plus its share of GDAL's "
            f"cache, beside {PARENT_MB} MB for byod itself); raise --memory-budget to run "
            "more")  # fmt: skip
