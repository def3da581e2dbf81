#!/usr/bin/env bash
# A release tarball: the binary, the systemd unit and its settings file, the README, and a
# SHA256SUMS file to check them against. Usage: packaging/release.sh  (prints the tarball)
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name="hallway-$version-$(uname -m)-linux"
cargo build --release -j2 --locked --bin hallway >&2
out=target/dist/$name
rm -rf "$out" && mkdir -p "$out"
install -m 755 target/release/hallway "$out/hallway"
install -m 644 packaging/hallway.service packaging/hallway.toml README.md "$out/"
(cd "$out" && sha256sum hallway hallway.service hallway.toml README.md > SHA256SUMS)
tar -C target/dist -czf "target/dist/$name.tar.gz" "$name"
(cd target/dist && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "target/dist/$name.tar.gz"
