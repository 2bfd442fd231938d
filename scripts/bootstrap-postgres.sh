#!/usr/bin/env bash
# Install Debian's PostgreSQL and PostGIS for the pgstac export test (tests/test_export.py),
# which starts its own server on 127.0.0.1 (needs root to install, as on the project's
# machines and CI). pgstac (pypgstac 0.10 migrates to pgstac 0.10.0) needs the postgis,
# btree_gist and unaccent extensions: the last two ship with PostgreSQL itself.
# Idempotent: does nothing when the server binaries and PostGIS are there already.
set -euo pipefail

installed() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null &&
    compgen -G "/usr/share/postgresql/*/extension/postgis.control" >/dev/null
}
installed && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "byod: PostgreSQL + PostGIS missing and cannot be installed here (needs root and" \
    "apt-get); the pgstac export test will be skipped" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg (unattended upgrades, a parallel bootstrap) may hold a lock: wait for
# it (apt's own timeout for the dpkg lock, retries for the lists lock) up to about 5 min.
apt() {
  local tries=0 out
  while true; do
    if out=$(apt-get -o DPkg::Lock::Timeout=60 -qq "$@" 2>&1); then
      return 0
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ] || ! grep -qi "lock" <<<"$out"; then
      echo "$out" >&2
      return 1
    fi
    sleep 10
  done
}

echo "byod: installing PostgreSQL and PostGIS (apt)" >&2
apt update
# The distribution's default major version (15 on bookworm) and its PostGIS 3 package.
major=$(apt-cache policy postgresql | sed -n 's/^ *Candidate: \([0-9]*\)+.*/\1/p')
if [ -z "$major" ]; then
  echo "byod: no postgresql package in the apt sources" >&2
  exit 1
fi
apt install -y --no-install-recommends postgresql "postgresql-$major-postgis-3"
installed
