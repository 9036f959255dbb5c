#!/usr/bin/env bash
# Install Debian's chromium for the end-to-end screenshot of the plugin's view (tests/e2e/test_ui_view.py),
# when it is missing. Needs root (apt-get); does nothing when chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing; as root run: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
