#!/usr/bin/env bash
# Builds and opens the Sealpost desktop app, installing what is missing first.
# Extra arguments are passed to the app.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
bash scripts/ui-deps.sh
(cd ui && npm run build --silent)
exec cargo run --locked -p sealpost --bin sealpost-desktop -- "$@"
