#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on this machine, for the report's
# browser test: Debian's chromium package where apt works and we are root (as
# on CI). Elsewhere it only reports and fails: the test then skips, or fails
# under CI=true (tests/conftest.py).
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        exit 0
    fi
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Chromium from Debian (chromium)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "no Chromium found and cannot install it (needs root and apt-get); the browser test will skip, or fail under CI=true" >&2
exit 1
