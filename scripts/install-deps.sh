#!/usr/bin/env bash
# Installs what Sealpost needs on Debian 12 when it is missing: the WebKitGTK stack the
# desktop app links, the X server and tools the window tests use, and the real servers
# the tests start. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
  # building the Tauri app (https://v2.tauri.app/start/prerequisites)
  build-essential pkg-config curl file libwebkit2gtk-4.1-dev libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev
  # running the real window headless, and looking at it
  xvfb xauth x11-utils x11-apps netpbm webkit2gtk-driver
  # real components the tests start
  gnupg softhsm2 opensc postgresql
  # peers the OpenPGP tests and benchmarks compare against (gpg above, Sequoia's sq and sqop)
  sq sqop
  # the real mail servers the mail tests start (IMAP over TLS, LMTP delivery, SMTP submission)
  dovecot-core dovecot-imapd dovecot-lmtpd postfix
  # the peer the mail sync benchmark compares against (mbsync)
  isync
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
