#!/usr/bin/env bash
# Install the services `make e2e-distributed` runs, when they are missing: redis-server and PostgreSQL 15,
# both from Debian. Nothing is started here: the test session starts private instances on loopback and
# free ports, and stops them (see tests/e2e_distributed/backends.py). Idempotent; needs root to install.
set -euo pipefail

PG_BIN="${GPTIMAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/pg_dump" ] || missing+=(postgresql-15)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -eq 0 ]; then
    echo "ensure-services: redis-server $(redis-server --version | awk '{print $3}'), PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-services: missing ${missing[*]}; install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "ensure-services: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' init scripts may try to start system-wide services; the tests never use those.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
id postgres >/dev/null 2>&1 || { echo "ensure-services: no postgres user after install" >&2; exit 1; }
echo "ensure-services: installed ${missing[*]}"
