#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browse-page test (needs root, as on the
# project's machines and CI). Skipped when both are there already.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
echo "byod: installing chromium and chromium-driver (apt)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
