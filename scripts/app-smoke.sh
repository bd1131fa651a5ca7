#!/usr/bin/env bash
# Smoke test of the real desktop window. Builds the UI and the app, starts the app in a
# headless X server (xvfb-run), waits until a window named "Sealpost" appears, saves a
# screenshot of it to test-artifacts/app-window.png and checks that the page painted: the
# UI's background colour fills most of it and there is more than one colour (text).
#
# Usage: scripts/app-smoke.sh            (honours CARGO_TARGET_DIR)
#   APP_SMOKE_TIMEOUT=60  seconds to wait for the window to appear and paint
# Needs: npm, cargo, xvfb-run, xauth, xwininfo, xwd, xwdtopnm, pnmtopng, python3, setsid,
# timeout, cmp (bash scripts/install-deps.sh installs the Debian packages).
# The last line printed is "1 passed, 0 failed" or "0 passed, 1 failed".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/debug/sealpost-desktop"
artifacts="$root/test-artifacts"
shot="$artifacts/app-window.png"
app_log="$artifacts/app.log"
wait_secs="${APP_SMOKE_TIMEOUT:-60}"

# Background of the placeholder page (ui/src/style.css). Seeing it proves the embedded
# UI loaded, not a blank window or a WebKit error page.
ui_background="f4efe6"

say() { echo "app-smoke: $*" >&2; }

# ---------------------------------------------------------------- inside the X server

# Stops the app and, through its process group, the WebKit processes it spawned.
stop_app() {
  kill -TERM -- "-$1" "$1" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL -- "-$1" "$1" 2>/dev/null || true
}

# Runs under xvfb-run: start the app in its own process group, wait for its window,
# screenshot it, check it, and always stop the app again.
inside_xvfb() {
  local win="" deadline geometry
  setsid "$bin" >"$app_log" 2>&1 &
  app_pid=$! # global: the EXIT trap reads it after this function returned
  # setsid made the app a process-group leader: stop it and its WebKit helpers together.
  trap 'stop_app "$app_pid"' EXIT

  deadline=$((SECONDS + wait_secs))
  while [ -z "$win" ]; do
    kill -0 "$app_pid" 2>/dev/null || { say "the app exited early; its log:"; cat "$app_log" >&2; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { say "no window named \"Sealpost\" after ${wait_secs}s"; xwininfo -root -tree >&2 || true; return 1; }
    # Lines look like:  0x1c00003 "Sealpost": ("sealpost-desktop" "Sealpost")  1100x720+0+0  +0+0
    # GTK also creates small helper windows; take the first large enough one.
    win="$(xwininfo -root -tree 2>/dev/null |
      awk '/ "Sealpost":/ { split($(NF-1), g, /[x+]/); if (g[1] >= 200 && g[2] >= 200) { print $1; exit } }')"
    [ -n "$win" ] || sleep 0.5
  done
  geometry="$(xwininfo -id "$win" | awk '/Width:/ { w = $2 } /Height:/ { h = $2 } END { print w "x" h }')"
  say "window $win ($geometry) is up after ${SECONDS}s"

  # The window maps before WebKit paints, and the version arrives after the first paint:
  # retake the screenshot until it shows the UI and two in a row are identical.
  local ppm="$artifacts/app-window.ppm" previous="$artifacts/app-window.previous.ppm"
  rm -f "$previous"
  while :; do
    if xwd -silent -id "$win" | xwdtopnm 2>/dev/null >"$ppm" && check_painted "$ppm" &&
      cmp -s "$ppm" "$previous"; then
      pnmtopng "$ppm" >"$shot"
      rm -f "$ppm" "$previous"
      say "screenshot: $shot"
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      pnmtopng "$ppm" >"$shot" 2>/dev/null || true
      say "the window never showed the UI steadily within ${wait_secs}s (last screenshot: $shot, app log: $app_log)"
      return 1
    fi
    mv -f "$ppm" "$previous"
    sleep 0.5
  done

  [ "$geometry" = "1100x720" ] || { say "window is $geometry, tauri.conf.json asks for 1100x720"; return 1; }
  # The app runs its embedded sync server on loopback by default: it must answer.
  curl -fsS --max-time 5 -H 'sealpost-api-version: 1' http://127.0.0.1:8443/v1/health >"$artifacts/health.json" ||
    { say "the embedded sync server does not answer on 127.0.0.1:8443; app log:"; cat "$app_log" >&2; return 1; }
  grep -q '"status":"ok"' "$artifacts/health.json" || { say "unexpected health answer: $(cat "$artifacts/health.json")"; return 1; }
  say "embedded sync server: $(cat "$artifacts/health.json")"
  kill -0 "$app_pid" 2>/dev/null || { say "the app died while being checked"; return 1; }
}

# Succeeds when the PPM is not one flat colour and the UI background covers at least a
# third of it. Prints what it saw.
check_painted() {
  python3 - "$1" "$ui_background" <<'PY'
import sys

path, background = sys.argv[1], bytes.fromhex(sys.argv[2])
data = open(path, "rb").read()
# Binary PPM: "P6" width height maxval, whitespace separated, then RGB triples.
fields, pos = [], 0
while len(fields) < 4:
    while data[pos:pos + 1].isspace():
        pos += 1
    end = pos
    while not data[end:end + 1].isspace():
        end += 1
    fields.append(data[pos:end])
    pos = end
pixels = data[pos + 1:]
if fields[0] != b"P6" or fields[3] != b"255":
    sys.exit(f"unexpected image format {fields}")
width, height = int(fields[1]), int(fields[2])
triples = [pixels[i:i + 3] for i in range(0, width * height * 3, 3)]
colours = len(set(triples))
share = triples.count(background) / max(len(triples), 1)
print(f"app-smoke: {width}x{height}, {colours} colours, {share:.0%} UI background", file=sys.stderr)
sys.exit(0 if colours > 1 and share >= 1 / 3 else 1)
PY
}

if [ "${1:-}" = "--inside-xvfb" ]; then
  inside_xvfb
  exit
fi

# ---------------------------------------------------------------- outside

result() {
  if [ "$1" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
  exit "$1"
}
fail() { say "FAIL: $*"; result 1; }

for tool in npm cargo xvfb-run xauth xwininfo xwd xwdtopnm pnmtopng python3 setsid timeout cmp; do
  command -v "$tool" >/dev/null || fail "missing $tool (run: bash scripts/install-deps.sh)"
done
mkdir -p "$artifacts"
rm -f "$shot" "$app_log"

say "building the UI"
(
  cd "$root/ui"
  [ -d node_modules ] || timeout 600 npm ci --no-audit --no-fund
  timeout 300 npm run build
) >&2 || fail "UI build failed"

say "building the app into $target_dir"
(cd "$root" && timeout 1800 cargo build --locked -p sealpost --bin sealpost-desktop \
  -p sealpost-server --bin sealpost-server) >&2 || fail "cargo build failed"
[ -x "$bin" ] || fail "no binary at $bin"

say "starting the app under Xvfb"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 NO_AT_BRIDGE=1
# The app keeps its data (and its embedded server's) under XDG_DATA_HOME: a throwaway one.
XDG_DATA_HOME="$(mktemp -d)"
export XDG_DATA_HOME
trap 'rm -rf "$XDG_DATA_HOME"' EXIT
unset SEALPOST_SERVER
# timeout signals its whole process group: xvfb-run, Xvfb, this script's inner copy and the app.
status=0
timeout --kill-after=10 "$((wait_secs + 30))" \
  xvfb-run -a -s "-screen 0 1280x1024x24" bash "$0" --inside-xvfb || status=$?
case "$status" in
  0) say "OK: the Sealpost window painted the UI" ;;
  124 | 137) fail "timed out after $((wait_secs + 30))s" ;;
  *) fail "the window check failed (app log: $app_log)" ;;
esac
result 0
