#!/usr/bin/env bash
# The benchmark run behind benches/README.md: every scenario of hallway-load against a
# release build, on loopback, each bounded. Not part of the test command. Takes a few minutes.
# Usage: benches/run.sh [output.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
cargo build --release -j2 --bins >&2
load=target/release/hallway-load
{
  echo "## Run of $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -r)"
  echo
  for n in 10 100 500 1000; do
    $load fanout --members $n --rate 100 --messages 200 | tail -n 1
    $load fanout --members $n --rate 0 --messages 200 | tail -n 1
  done | sed '1i | scenario | members | senders | messages | rate | deliveries | lost | p50 ms | p99 ms | max ms | deliveries/s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  echo
  for s in 1 10 100; do $load ingest --senders $s --seconds 5 | tail -n 1; done \
    | sed '1i | scenario | senders | seconds | acked | acked/s | ack p50 ms | ack p99 ms |\n| --- | --- | --- | --- | --- | --- | --- |'
  echo
  for k in 1000 10000; do $load idle --tabs $k | tail -n 1; done \
    | sed '1i | scenario | tabs | server RSS before (MiB) | after (MiB) | per tab (KiB) |\n| --- | --- | --- | --- | --- |'
  echo
  big=$(mktemp -d)/big.redb
  $load generate --messages 1000000 --data "$big"
  echo
  $load history --data "$big"
  rm -f "$big"
} > "$out"
