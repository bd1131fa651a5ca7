#!/usr/bin/env bash
# Installs the UI's npm packages from the lockfile when they are missing or stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
