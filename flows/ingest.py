"""byod's Prefect flows, for scripts that import them from the repository folder.

The flows live in the installed package (`byod.flows`), so that deployment workers and Dask
workers, which have byod installed but not this folder, can import them; prefect.yaml names
`byod.flows.ingest` and `byod.flows.sweep`.
"""

from byod.flows import check_cluster, ingest, sweep

__all__ = ["check_cluster", "ingest", "sweep"]
