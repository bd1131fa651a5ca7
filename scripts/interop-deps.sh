#!/usr/bin/env bash
# Installs the peers of the OpenPGP interoperability matrix (scripts/interop-matrix.sh)
# and of the benchmark's rsop rows: gosop and pgpainless-cli from Debian (sqop, sq and
# gpg come with install-deps.sh), and rsop (rPGP, which implements RFC 9980) from
# crates.io into /var/tmp/sealpost-peers, which survives between runs on one machine
# like the build directory. Idempotent.
#
# Cost, measured on the 2-core machine with other builds running (2026-12-07): the two
# Debian packages (with a headless JRE for pgpainless) 13 s; `cargo install rsop` cold
# 7 min 42 s wall (6 min 55 s CPU), nothing when cached. SEALPOST_SKIP_RSOP=1 leaves rsop
# out (its matrix rows are then reported as skipped).
set -euo pipefail

packages=(gosop pgpainless-cli)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "interop-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

peers=/var/tmp/sealpost-peers
if [ "${SEALPOST_SKIP_RSOP:-0}" != 1 ] && [ ! -x "$peers/bin/rsop" ]; then
  echo "interop-deps: building rsop 0.12 (rPGP, RFC 9980) into $peers"
  cargo install --quiet --locked rsop --version 0.12.0 --root "$peers" --target-dir "$peers/target"
  rm -rf "$peers/target"
fi
