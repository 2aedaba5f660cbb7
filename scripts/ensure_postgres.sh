#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are on this machine, for the tests and
# the benchmark that share a study between processes through a throwaway
# server (search/testing/postgres.py): Debian's postgresql package (15 on
# bookworm) where apt works and we are root (as on CI). Elsewhere it only
# reports and fails: the PostgreSQL tests then skip, or fail under CI=true
# (tests/conftest.py).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing PostgreSQL from Debian (postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    exit 0
fi
echo "no PostgreSQL server found and cannot install it (needs root and apt-get); the PostgreSQL tests will skip, or fail under CI=true" >&2
exit 1
