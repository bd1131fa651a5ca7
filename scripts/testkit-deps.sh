#!/usr/bin/env bash
# Installs the npm packages of the test OpenID provider (crates/testkit/oidc, which runs
# oidc-provider under Node) from its lockfile when they are missing or stale. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../crates/testkit/oidc"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
