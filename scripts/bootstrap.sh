#!/usr/bin/env bash
# Install what byod needs into the project folder: uv (in .tools/) and the locked
# environment (in .venv/). Idempotent; a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.9.30
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "byod: installing uv $UV_VERSION into .tools/" >&2
  "$PYTHON" -m venv .tools
  .tools/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
# --frozen: install exactly what uv.lock says, never re-resolve on a fresh clone.
# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE (this one does) would
# otherwise compile pyarrow, pandas and friends again in every process: about 1.3 s of CPU
# per `byod` command and per worker (measured; a second sync only checks, ~2 s).
.tools/bin/uv sync --frozen --all-extras --quiet --compile-bytecode --python "$PYTHON"
.venv/bin/python -m compileall -q src >/dev/null
