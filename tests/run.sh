#!/usr/bin/env bash
# Every test Hallway has: unit and integration tests (cargo), then the browser test in
# Debian's Chromium. Installs what it needs (chromium, the npm packages) on the way.
# Usage: tests/run.sh        (from anywhere; as root or with sudo rights for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser test"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y chromium
fi

if ! command -v certutil >/dev/null 2>&1; then
  echo "== installing certutil (libnss3-tools): the HTTPS browser test trusts the office's CA with it"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y libnss3-tools
fi

if ! python3 -c "import zeroconf" >/dev/null 2>&1; then
  echo "== installing python-zeroconf, the mDNS client of the discovery test"
  python3 -m pip install --quiet --disable-pip-version-check zeroconf==0.154.0
fi

echo "== formatting and lints"
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy -j2 --locked --all-targets -- -D warnings; fi

echo "== cargo build and test"
cargo build -j2 --locked
cargo test -j2 --locked

echo "== browser test"
(cd tests/browser && npm ci --no-audit --no-fund && node --test)

echo "== packages: the .deb and the release tarball"
bash tests/package.sh
