#!/usr/bin/env bash
# The packages, for real: the .deb builds, installs with dpkg, its unit's command line starts
# the server and serves the page, `dpkg -r` keeps the data file and `dpkg --purge` removes it;
# the release tarball builds and its checksums verify. Run by tests/run.sh, as root.
#
# It never starts the service through systemd, and never lets the server announce on this
# machine's network: the unit's command line runs inside a network namespace with only
# loopback (policy-rc.d stops the package's own start).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: the package test installs a .deb and needs root"
  exit 0
fi
if dpkg -s hallway >/dev/null 2>&1; then
  echo "FAILED: a hallway package is already installed here; the test would replace it" >&2
  exit 1
fi
command -v cargo-deb >/dev/null 2>&1 || cargo install --quiet --locked cargo-deb --version 3.8.0

fail() { echo "FAILED: $*" >&2; exit 1; }
ns="hw-pkg-$$"
policy=/usr/sbin/policy-rc.d
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  if [ -f "$policy.hallway-test" ]; then rm -f "$policy.hallway-test" "$policy"; fi
  dpkg --purge hallway >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "-- building the .deb"
cargo deb --locked -- -j2 >/dev/null
deb=$(ls -t target/debian/hallway_*.deb | head -1)
[ -f "$deb" ] || fail "cargo deb made no package"

echo "-- installing $deb"
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# hallway package test: start no services\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  touch "$policy.hallway-test"
fi
dpkg -i "$deb" | tee /tmp/hallway-dpkg-$$.log
grep -q "journalctl -u hallway" /tmp/hallway-dpkg-$$.log || fail "the install did not say where the setup link is"
rm -f /tmp/hallway-dpkg-$$.log
[ -x /usr/bin/hallway ] || fail "no /usr/bin/hallway"
unit=$(dpkg -L hallway | grep '/systemd/system/hallway.service$') || fail "no unit installed"
getent passwd hallway >/dev/null || fail "no hallway user"
[ "$(stat -c %U /var/lib/hallway)" = hallway ] || fail "/var/lib/hallway is not the service user's"
[ -f /etc/hallway/hallway.toml ] || fail "no /etc/hallway/hallway.toml"
for setting in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes CapabilityBoundingSet= StateDirectory=hallway Restart=on-failure User=hallway; do
  grep -qx "$setting" "$unit" || fail "the unit lacks $setting"
done

echo "-- running the unit's command line as the unit would, in a namespace with only loopback"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
mapfile -t environment < <(sed -n 's/^Environment=//p' "$unit")
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
log=$(mktemp)
(cd /var/lib/hallway && exec ip netns exec "$ns" setpriv --reuid hallway --regid hallway --init-groups \
  env -i PATH=/usr/bin:/bin "${environment[@]}" $exec_start >"$log" 2>&1) &
server=$!
for _ in $(seq 1 100); do
  grep -q "Press Ctrl-C" "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; fail "the server stopped"; }
  sleep 0.1
done
grep -q "/setup#" "$log" || { cat "$log"; fail "the first start printed no setup link"; }
page=$(ip netns exec "$ns" curl -fsS http://127.0.0.1:8088/) || { cat "$log"; fail "the installed server does not serve the page"; }
grep -q "<title>Hallway" <<<"$page" || fail "the page is not Hallway's"
kill "$server"; wait "$server" || true; server=""
[ -f /var/lib/hallway/hallway.redb ] || fail "no data file in /var/lib/hallway"
[ "$(stat -c %U /var/lib/hallway/hallway.redb)" = hallway ] || fail "the data file is not the service user's"
rm -f "$log"

echo "-- removing keeps the data file, purging deletes it"
dpkg -r hallway >/dev/null
[ ! -e /usr/bin/hallway ] || fail "dpkg -r left the binary"
[ -f /var/lib/hallway/hallway.redb ] || fail "dpkg -r deleted the data file"
dpkg --purge hallway >/dev/null
[ ! -e /var/lib/hallway ] || fail "dpkg --purge left /var/lib/hallway"

echo "-- the release tarball"
tarball=$(packaging/release.sh)
dir=$(mktemp -d)
tar -C "$dir" -xzf "$tarball"
(cd "$dir"/hallway-* && sha256sum --quiet -c SHA256SUMS) || fail "the tarball's checksums do not verify"
(cd "$(dirname "$tarball")" && sha256sum --quiet -c "$(basename "$tarball").sha256") || fail "the tarball's own checksum does not verify"
"$dir"/hallway-*/hallway --version >/dev/null || fail "the tarball's binary does not run"
rm -rf "$dir"
echo "package test passed"
