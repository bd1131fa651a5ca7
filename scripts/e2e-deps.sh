#!/usr/bin/env bash
# Installs tauri-driver (the WebDriver front of the real app window, in front of Debian's
# WebKitWebDriver) when it is missing. The end-to-end tests in tests/e2e find it in PATH
# or in Cargo's bin directory. Idempotent.
set -euo pipefail
version="2.1.0"
bin="${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver"
if command -v tauri-driver >/dev/null 2>&1 || [ -x "$bin" ]; then
  exit 0
fi
echo "e2e-deps: installing tauri-driver $version"
cargo install "tauri-driver@$version" --locked --quiet
