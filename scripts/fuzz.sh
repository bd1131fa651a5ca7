#!/usr/bin/env bash
# A bounded fuzzing session of the two doors hostile OpenPGP and mail come through: the
# mail reader (`open_mail`) and `sealpost sop decrypt`, both on the one decrypt pipeline
# (fuzz/). Not part of CI: it needs the nightly toolchain and minutes of CPU.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 120)
# Each target starts from fuzz/corpus/<target> (seeds written by
# `SEALPOST_WRITE_FUZZ_SEEDS=1 cargo nextest run -p sealpost-pgp --test fuzz_corpus`).
# Every crash is copied to fuzz/regressions/<target>/, which the `fuzz_corpus` test
# replays in every test run: commit it with the fix. Exits non-zero if a target crashed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-120}"
export PATH="$PATH:/var/tmp/sealpost-peers/bin"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --quiet --locked cargo-fuzz --root /var/tmp/sealpost-peers || exit 1
fi

cd "$root/fuzz"
status=0
for target in open_mail sop_decrypt; do
  work="$(mktemp -d)"
  cp corpus/"$target"/* "$work"/ 2>/dev/null
  echo "fuzz: $target for ${seconds}s"
  # The corpus grows in a scratch copy; the committed seeds stay small and chosen.
  cargo +nightly fuzz run "$target" "$work" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=20 \
    2>&1 | grep -E '^#[0-9]+ +(DONE|pulse)|Done |SUMMARY|panicked|ERROR' | tail -5
  rm -rf "$work"
  shopt -s nullglob
  for crash in artifacts/"$target"/crash-* artifacts/"$target"/oom-* artifacts/"$target"/timeout-*; do
    mkdir -p regressions/"$target"
    cp "$crash" regressions/"$target"/
    echo "fuzz: $target found $(basename "$crash"), kept in fuzz/regressions/$target/"
    status=1
  done
  shopt -u nullglob
done
exit "$status"
