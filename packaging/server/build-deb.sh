#!/usr/bin/env bash
# Builds the sealpost-server Debian package with dpkg-deb (on every Debian system; no
# packaging tool to compile first).
#
#   packaging/server/build-deb.sh                 # cargo build --release, then package
#   packaging/server/build-deb.sh --binary PATH   # package an already built binary
#   packaging/server/build-deb.sh --out DIR       # where the .deb goes (default: target/debian)
#   packaging/server/build-deb.sh --fast          # gzip -1 instead of xz (tests: seconds, not tens)
#
# Prints the path of the .deb it wrote.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary=""
compress=(-Zxz)
out="${CARGO_TARGET_DIR:-$root/target}/debian"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  (cd "$root" && cargo build --release --locked -p sealpost-server >&2)
  binary="${CARGO_TARGET_DIR:-$root/target}/release/sealpost-server"
fi
[ -x "$binary" ] || { echo "build-deb.sh: $binary is not an executable" >&2; exit 1; }

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/sealpost-server"

install -D -m 0755 "$binary" "$pkg/usr/bin/sealpost-server"
# A debug build carries its symbols; the package never does.
strip --strip-unneeded "$pkg/usr/bin/sealpost-server" 2>/dev/null || true
install -D -m 0644 "$here/sealpost-server.service" "$pkg/lib/systemd/system/sealpost-server.service"
install -D -m 0640 "$here/server.toml" "$pkg/etc/sealpost-server/server.toml"
install -D -m 0640 "$here/environment" "$pkg/etc/sealpost-server/environment"
install -D -m 0644 "$here/README.md" "$pkg/usr/share/doc/sealpost-server/README.md"
install -D -m 0644 /dev/stdin "$pkg/usr/share/doc/sealpost-server/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sealpost
Files: *
License: AGPL-3.0-or-later
COPYRIGHT

install -d "$pkg/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "$here/$script" "$pkg/DEBIAN/$script"
done
printf '/etc/sealpost-server/server.toml\n/etc/sealpost-server/environment\n' > "$pkg/DEBIAN/conffiles"
size_kib="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: sealpost-server
Version: $version
Architecture: $arch
Maintainer: Sealpost <server@sealpost.invalid>
Depends: libc6 (>= 2.36), adduser
Recommends: postgresql, softhsm2
Section: net
Priority: optional
Installed-Size: $size_kib
Description: Sealpost sync server
 OPAQUE sign-in, HSM-sealed wrapped keys and settings, devices, and a key
 directory with a verifiable transparency log, for the Sealpost mail app.
 Runs as the system user sealpost under a hardened systemd unit; metrics and
 health probes on a private operations listener.
CONTROL

mkdir -p "$out"
deb="$out/sealpost-server_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >&2
echo "$deb"
