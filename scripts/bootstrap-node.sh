#!/usr/bin/env bash
# Install the pinned Azure Storage emulator (Azurite) from package-lock.json into node_modules/.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.byod-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "byod: installing Azurite (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
