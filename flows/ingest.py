"""byod's Prefect flows, for scripts that import them from the repository folder.

The flows live in the installed package (`byod_flows`), so that deployment workers and Dask
workers, which have byod installed but not this folder, can import them; prefect.yaml names
`byod_flows.ingest` and `byod_flows.sweep`.
"""

from byod_flows import check_cluster, ingest, sweep

__all__ = ["check_cluster", "ingest", "sweep"]
