#!/usr/bin/env bash
# Runs every Sealpost test, from a fresh clone on Debian 12: installs what is missing
# (Debian packages, the UI's npm packages), then checks formatting and lints, runs the Rust
# tests (unit, integration, doc), the UI's tests and the real desktop window's smoke test.
# Each runner prints its own summary line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh
bash scripts/ui-deps.sh
bash scripts/testkit-deps.sh
bash scripts/e2e-deps.sh
# The app embeds ui/dist at compile time, so the UI is built before any cargo command.
(cd ui && npm run build --silent)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all crates and the app, all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "Rust doc tests"
cargo test --workspace --doc --locked

step "OpenPGP interoperability matrix (sealpost sop against sqop, gosop, pgpainless-cli, gpg, rsop)"
bash scripts/interop-deps.sh
bash scripts/interop-matrix.sh

step "UI tests (Vitest)"
(cd ui && npm test --silent)

step "the real window under Xvfb"
bash scripts/app-smoke.sh
