#!/usr/bin/env bash
# The OpenPGP interoperability matrix (issue 15): `sealpost sop` against independent
# implementations, both directions, for encrypt+sign → decrypt+verify and for detached
# sign → verify, with Sealpost's own keys (ML-KEM-768+X25519 beside X25519, SEIPDv2
# advertised) and each peer's. Peers: sqop (Sequoia 1.x), gosop (GopenPGP), pgpainless-cli
# (Bouncy Castle), GnuPG 2.2 (through a few gpg commands), and rsop (rPGP), whose
# `rfc9980-v4` profile makes a post-quantum key of its own, so the post-quantum path runs
# between two independent implementations in both directions.
#
# Every cell must give what scripts/interop-expectations.txt says (pass unless listed);
# a cell that does otherwise, either way, fails the run, so the file stays true.
#
# Usage: scripts/interop-matrix.sh [path/to/sealpost]   (default: target/debug/sealpost,
# built if missing). Peers that are not installed are listed as skipped; CI installs
# them with scripts/interop-deps.sh.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
sealpost="${1:-$target/debug/sealpost}"
if [ ! -x "$sealpost" ]; then
  (cd "$root" && cargo build --quiet -p sealpost-cli) || exit 1
fi
expectations="$root/scripts/interop-expectations.txt"
export PATH="$PATH:/var/tmp/sealpost-peers/bin:$HOME/.cargo/bin"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
msg="$work/message.txt"
printf 'Interoperability test message.\nSecond line, with trailing space \nGrüße ✓\n' >"$msg"

# ---------------------------------------------------------------- the implementations
# Each implementation is driven through the SOP verbs below; gpg is wrapped.

sop_sealpost() { "$sealpost" sop "$@"; }

gpg_home() { printf '%s/gnupg-%s' "$work" "$1"; }

# gpg as a SOP-like peer: only what the matrix uses.
sop_gpg() {
  local home
  home="$(gpg_home peer)"
  mkdir -p "$home" && chmod 700 "$home"
  local g=(gpg --homedir "$home" --batch --quiet --yes --pinentry-mode loopback --passphrase "")
  case "$1" in
    generate-key)
      "${g[@]}" --quick-gen-key "$2" ed25519 sign 0 >/dev/null 2>&1 || return 1
      local fpr
      fpr="$("${g[@]}" --with-colons --list-keys "$2" | awk -F: '/^fpr/ {print $10; exit}')"
      "${g[@]}" --quick-add-key "$fpr" cv25519 encr 0 >/dev/null 2>&1 || return 1
      "${g[@]}" --export-secret-keys "$fpr"
      ;;
    extract-cert) "${g[@]}" --import >/dev/null 2>&1; "${g[@]}" --export ;;
    encrypt)  # encrypt --sign-with KEY CERT
      "${g[@]}" --import "$3" "$4" >/dev/null 2>&1 || return 1
      local to signer
      to="$(gpg --with-colons --show-keys "$4" | awk -F: '/^fpr/ {print $10; exit}')"
      signer="$(gpg --with-colons --show-keys "$3" | awk -F: '/^fpr/ {print $10; exit}')"
      "${g[@]}" --trust-model always -z 0 --armor --sign --local-user "$signer" \
        --encrypt --recipient "$to"
      ;;
    decrypt)  # decrypt --verify-with CERT --verifications-out OUT KEY
      "${g[@]}" --import "$3" "$6" >/dev/null 2>&1 || return 1
      "${g[@]}" --trust-model always --status-fd 3 --decrypt 3>"$5.status" || return 1
      grep -q '^\[GNUPG:\] GOODSIG' "$5.status" && cp "$5.status" "$5"
      ;;
    sign)  # sign KEY
      "${g[@]}" --import "$2" >/dev/null 2>&1 || return 1
      local signer
      signer="$(gpg --with-colons --show-keys "$2" | awk -F: '/^fpr/ {print $10; exit}')"
      "${g[@]}" --armor --detach-sign --local-user "$signer"
      ;;
    verify)  # verify SIG CERT
      "${g[@]}" --import "$3" >/dev/null 2>&1 || return 1
      local data="$work/gpg-verify-data"
      cat >"$data"
      "${g[@]}" --status-fd 1 --verify "$2" "$data" 2>/dev/null | grep -q '^\[GNUPG:\] GOODSIG'
      ;;
  esac
}

sop_peer() {
  local peer="$1"
  shift
  case "$peer" in
    gpg) sop_gpg "$@" ;;
    rsop-pq)
      if [ "$1" = generate-key ]; then rsop generate-key --profile rfc9980-v4 "${@:2}"
      else rsop "$@"; fi
      ;;
    gosop)
      # Debian's gosop (2022) speaks an older SOP draft: --verify-out.
      local args=()
      for a in "$@"; do
        [ "$a" = --verifications-out ] && a=--verify-out
        args+=("$a")
      done
      gosop "${args[@]}"
      ;;
    *) "$peer" "$@" ;;
  esac
}

installed() {
  case "$1" in
    gpg) command -v gpg >/dev/null ;;
    rsop-pq) command -v rsop >/dev/null ;;
    *) command -v "$1" >/dev/null ;;
  esac
}

# ---------------------------------------------------------------- the cells

expected() {  # expected PEER CELL → pass|fail
  local line
  line="$(awk -v p="$1" -v c="$2" '$1 == p && $2 == c {print $3; exit}' "$expectations")"
  printf '%s' "${line:-pass}"
}

# cell NAME COMMAND...: runs COMMAND, records pass or fail, compares with expectations.
failures=0
passes=0
cell() {
  local peer="$1" name="$2"
  shift 2
  local got want
  if "$@" >"$work/cell.log" 2>&1; then got=pass; else got=fail; fi
  want="$(expected "$peer" "$name")"
  if [ "$got" = "$want" ]; then
    passes=$((passes + 1))
    printf '  %-14s %-26s %-4s\n' "$peer" "$name" "$got"
  else
    failures=$((failures + 1))
    printf '  %-14s %-26s %-4s  (expected %s)\n' "$peer" "$name" "$got" "$want"
    sed 's/^/      | /' "$work/cell.log" | head -8
  fi
}

same() { cmp -s "$1" "$msg"; }

# Sealpost encrypts to the peer and signs; the peer decrypts and verifies.
enc_to_peer() {
  local peer="$1" d="$2"
  sop_sealpost encrypt --sign-with "$d/s.key" "$d/p.cert" <"$msg" >"$d/s2p.asc" || return 1
  sop_peer "$peer" decrypt --verify-with "$d/s.cert" --verifications-out "$d/s2p.ver" \
    "$d/p.key" <"$d/s2p.asc" >"$d/s2p.out" || return 1
  same "$d/s2p.out" && [ -s "$d/s2p.ver" ]
}

# The peer encrypts to Sealpost and signs; Sealpost decrypts and verifies.
enc_from_peer() {
  local peer="$1" d="$2"
  sop_peer "$peer" encrypt --sign-with "$d/p.key" "$d/s.cert" <"$msg" >"$d/p2s.asc" || return 1
  sop_sealpost decrypt --verify-with "$d/p.cert" --verifications-out "$d/p2s.ver" \
    "$d/s.key" <"$d/p2s.asc" >"$d/p2s.out" || return 1
  same "$d/p2s.out" && [ -s "$d/p2s.ver" ]
}

# The peer encrypted to Sealpost's key (enc_from_peer): did it use the post-quantum
# subkey? An ML-KEM-768+X25519 session-key packet carries a 1,088-byte ML-KEM
# ciphertext; an X25519 one is under 100 bytes (and Sealpost's keys have no RSA). sq 0.27
# does not know algorithm 35 or PKESKv6, but still prints each packet's size.
used_ml_kem() {
  sq packet dump "$2/p2s.asc" 2>/dev/null | awk '
    /bytes$/ { size = $(NF - 1) }
    /Public-Key Encrypted Session Key Packet/ {
      if ($0 ~ /bytes$/) size = $(NF - 1)
      if (size + 0 >= 1100) found = 1
    }
    END { exit !found }'
}

sig_to_peer() {
  local peer="$1" d="$2"
  sop_sealpost sign "$d/s.key" <"$msg" >"$d/s.sig" || return 1
  sop_peer "$peer" verify "$d/s.sig" "$d/s.cert" <"$msg" >/dev/null
}

sig_from_peer() {
  local peer="$1" d="$2"
  sop_peer "$peer" sign "$d/p.key" <"$msg" >"$d/p.sig" || return 1
  sop_sealpost verify "$d/p.sig" "$d/p.cert" <"$msg" >/dev/null
}

echo "interop matrix: $("$sealpost" sop version) against the peers below"
echo "  (expectations: scripts/interop-expectations.txt)"
skipped=()
for peer in sqop gosop pgpainless-cli gpg rsop rsop-pq; do
  if ! installed "$peer"; then
    skipped+=("$peer")
    continue
  fi
  d="$work/$peer"
  mkdir -p "$d"
  sop_sealpost generate-key "Sealpost <s@sealpost.test>" >"$d/s.key"
  sop_sealpost extract-cert <"$d/s.key" >"$d/s.cert"
  if ! sop_peer "$peer" generate-key "Peer <p@peer.test>" >"$d/p.key" 2>"$work/gen.log" \
    || ! sop_peer "$peer" extract-cert <"$d/p.key" >"$d/p.cert" 2>>"$work/gen.log"; then
    failures=$((failures + 1))
    echo "  $peer: cannot make its own key:"
    sed 's/^/      | /' "$work/gen.log" | head -5
    continue
  fi
  cell "$peer" encrypt-sign:sealpost-to enc_to_peer "$peer" "$d"
  cell "$peer" encrypt-sign:to-sealpost enc_from_peer "$peer" "$d"
  cell "$peer" sign:sealpost-to sig_to_peer "$peer" "$d"
  cell "$peer" sign:to-sealpost sig_from_peer "$peer" "$d"
  if [ "$peer" = rsop-pq ] || [ "$peer" = rsop ]; then
    # A peer that knows RFC 9980 encrypts to Sealpost's post-quantum subkey.
    cell "$peer" pq:peer-uses-ml-kem used_ml_kem "$peer" "$d"
  fi
done
[ "${#skipped[@]}" -eq 0 ] || echo "  skipped (not installed): ${skipped[*]}"
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
