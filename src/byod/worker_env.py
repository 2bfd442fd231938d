"""The environment of a worker process: an allowlist, so no credential reaches a process that
reads untrusted uploads (issue 11), and GDAL's switches that keep it off the network.

Light on purpose (no GDAL, no numpy): the parent starts the forkserver with this environment
as soon as it knows there is work (`runner.start_forkserver`), before it imports GDAL itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# A worker's environment is an ALLOWLIST of what parsing a raster needs: a hub's environment
# holds tokens under any name (JUPYTERHUB_API_TOKEN, PREFECT_API_KEY, GITHUB_TOKEN, HF_TOKEN,
# DATABASE_URL, DASK_GATEWAY__AUTH__*, ...), which no list of credential names could catch.
WORKER_VARIABLES = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP", "LD_LIBRARY_PATH",
     "PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE",
     "PYTHONPYCACHEPREFIX", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONIOENCODING",
     "PYTHONUTF8", "PYTHONFAULTHANDLER", "PYTHONWARNINGS", "PYTHONMALLOC",
     "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
     "VECLIB_MAXIMUM_THREADS", "MALLOC_ARENA_MAX"}
)  # fmt: skip
# ... and by prefix: locale, GDAL/PROJ/OGR/HDF5 configuration (data folders, cache, threads) ...
WORKER_PREFIXES = ("LC_", "GDAL_", "CPL_", "PROJ_", "OGR_", "HDF5_")
# ... except the options of those that carry credentials or reach the network: GDAL's HTTP
# options (auth, headers, cookies, certificates, proxies), its cloud drivers' options
# (CPL_AWS_*, CPL_GS_*, ...) and anything named like a secret.
_SECRET_WORDS = re.compile(
    r"HTTP|CURL|AUTH|USERPWD|PASSW|SECRET|TOKEN|KEY|CREDENTIAL|HEADER|COOKIE|BEARER|SAS|CERT"
    r"|AWS|AZURE|_GS_|GOOGLE|OSS|SWIFT|NETWORK|PROXY"
)
# GDAL's switches for a worker (GDAL docs: configuration options, security considerations).
GDAL_WORKER_OPTIONS = {
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    # Only this (impossible) extension may be fetched by /vsicurl/ and friends ...
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".byod-no-network",
    # ... and any request still made goes to a closed loopback port, once, quickly.
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "2",
    "GDAL_HTTP_CONNECTTIMEOUT": "2",
    "AWS_NO_SIGN_REQUEST": "YES",
}


def worker_variable(name: str) -> bool:
    """Whether a worker keeps the environment variable `name` (the allowlist:
    `WORKER_VARIABLES`, `WORKER_PREFIXES` minus names like a secret or a network option)."""
    if name in WORKER_VARIABLES:
        return True
    return name.startswith(WORKER_PREFIXES) and not _SECRET_WORDS.search(name.upper())


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What a worker process is started with of `environ`: the allowed variables only
    (`worker_variable`), plus GDAL's switches (`GDAL_WORKER_OPTIONS`). For processes started
    with an environment of their own (the forkserver, `byod.subworker`), so that not even
    /proc/PID/environ holds a credential."""
    env = {k: v for k, v in environ.items() if worker_variable(k)}
    env.update(GDAL_WORKER_OPTIONS)
    return env


def worker_environment(allow_raw_bands: bool = False) -> None:
    """Make this (worker) process unable to use byod's credentials or the network through GDAL.

    Removes every environment variable but the allowed ones (`worker_variable`: no token,
    key, password or proxy under any name) and sets GDAL's switches (`GDAL_WORKER_OPTIONS`).
    Call it first thing in a worker, before any input is opened: GDAL reads these options
    from the environment when a dataset is opened.
    """
    for name in list(os.environ):
        if not worker_variable(name):
            del os.environ[name]
    os.environ.update(GDAL_WORKER_OPTIONS)
    if allow_raw_bands:
        os.environ["GDAL_VRT_ENABLE_RAWRASTERBAND"] = "YES"
