#!/usr/bin/env bash
# Builds and opens the Sealpost desktop app, installing what is missing first.
#
#   scripts/run.sh            the app, with its embedded sync server on 127.0.0.1:8443
#   scripts/run.sh --demo     also local Dovecot and Postfix with two demo mailboxes
#                             (alice@ and bob@sealpost.test) and a sync server whose key
#                             directory mails through them: send an encrypted mail from
#                             one to the other on this machine (two windows, two profiles)
#
# Other arguments are passed to the app.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
bash scripts/ui-deps.sh
(cd ui && npm run build --silent)

demo=0
args=()
for a in "$@"; do
  if [ "$a" = "--demo" ]; then demo=1; else args+=("$a"); fi
done

# The app runs its embedded sync server as a process of its own, found beside it.
target="${CARGO_TARGET_DIR:-$root/target}/debug"
if [ "$demo" -eq 0 ]; then
  cargo build --locked -p sealpost --bin sealpost-desktop -p sealpost-server --bin sealpost-server
  exec "$target/sealpost-desktop" "${args[@]}"
fi

cargo build --locked -p sealpost --bin sealpost-desktop -p sealpost-demo --bin sealpost-demo
work="$(mktemp -d -t sealpost-demo-XXXXXX)"
info="$work/demo.json"
# The demo servers live as long as this script: their stdin is a pipe from here.
exec 3> >("$target/sealpost-demo" "$info")
for _ in $(seq 1 100); do [ -s "$info" ] && break; sleep 0.2; done
[ -s "$info" ] || { echo "run.sh: the demo servers did not start" >&2; exit 1; }

json() { python3 -c "import json,sys; d=json.load(open('$info')); print($1)"; }
sync="$(json 'd["syncServer"]')"
ca="$(json 'd["caFile"]')"
cat <<INFO

Sealpost demo — two windows, two profiles (in $work):
  sync server   $sync
  mail servers  IMAP localhost:$(json 'd["imap"]["port"]') (TLS), SMTP localhost:$(json 'd["smtp"]["port"]') (TLS)
  mailboxes     $(json '", ".join(u["address"] + " / " + u["password"] for u in d["users"])')
In each window: create an account (any user name, a strong password), add the mailbox
(the address, then the servers above and its password), publish your key in Settings,
then write to the other with Encrypt ticked.

INFO
for who in alice bob; do
  SEALPOST_SERVER="$sync" SEALPOST_MAIL_CA_FILE="$ca" SEALPOST_PROFILE="$work/$who" \
    "$target/sealpost-desktop" "${args[@]}" &
done
wait
