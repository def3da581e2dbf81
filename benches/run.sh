#!/usr/bin/env bash
# The benchmark run behind benches/README.md: every scenario of hallway-load against a
# release build, on loopback, each bounded. Not part of the test command. Takes a few minutes.
# Needs: apt-get install mosquitto ngircd (the peers; started by hallway-load itself).
# Usage: benches/run.sh [output.md]
#        benches/run.sh --big [output.md]   only the history and crash scenarios on a file of
#                                           10,000,000 messages (2.2 GB; needs 5 GB free in /tmp,
#                                           about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--big" ]; then
  shift
  out=${1:-/dev/stdout}
  cargo build --release -j2 --bins >&2
  load=target/release/hallway-load
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  {
    echo "## Run of $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -r): 10,000,000 messages"
    echo
    $load generate --messages 10000000 --data "$dir/big10.redb"
    echo
    $load history --data "$dir/big10.redb"
    echo
    for mode in "" --slow-repair; do $load crash --data "$dir/big10.redb" --rounds 3 $mode | tail -n 1; done \
      | sed '1i | scenario | commits | file MiB | round | start to serving ms | acked before the kill |\n| --- | --- | --- | --- | --- | --- |'
  } > "$out"
  exit 0
fi
command -v mosquitto >/dev/null && command -v ngircd >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto ngircd >&2; }
out=${1:-/dev/stdout}
cargo build --release -j2 --bins >&2
load=target/release/hallway-load
{
  echo "## Run of $(date -u +%Y-%m-%d) on $(nproc) cores, $(uname -r)"
  echo
  fan=$(mktemp)
  for n in 10 100 500 1000; do
    for rate in 100 0; do
      for peer in hallway mosquitto ngircd; do
        $load fanout --peer $peer --members $n --rate $rate --messages 200 | tail -n 1
      done
    done
  done > "$fan"
  echo "### Room fan-out (200 messages, one sender)"
  echo
  echo "| scenario | server | members | senders | messages | rate | deliveries | lost | p50 ms | p99 ms | max ms | deliveries/s |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  cat "$fan"
  echo
  echo "### Peers as ratios to Hallway (same run; deliveries/s: peer / Hallway, p99: peer / Hallway)"
  echo
  echo "| members | rate | mosquitto deliveries/s | mosquitto p99 | ngircd deliveries/s | ngircd p99 |"
  echo "| --- | --- | --- | --- | --- | --- |"
  awk -F'|' '{ gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $7); gsub(/ /, "", $11); gsub(/ /, "", $13);
               key = $4 "|" $7; tp[key, $3] = $13; p99[key, $3] = $11; if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
       END { for (i = 0; i < n; i++) { k = order[i]; split(k, kk, "|");
               printf "| %s | %s | %.2f | %.2f | %.2f | %.2f |\n", kk[1], kk[2],
                 tp[k, "Mosquitto"] / tp[k, "Hallway"], p99[k, "Mosquitto"] / p99[k, "Hallway"],
                 tp[k, "Ngircd"] / tp[k, "Hallway"], p99[k, "Ngircd"] / p99[k, "Hallway"] } }' "$fan"
  rm -f "$fan"
  echo
  # Each commit with redb's quick-repair record (the server's way) and without (what it costs), alternated.
  for s in 1 10 100; do for mode in "" --slow-repair "" --slow-repair; do $load ingest --senders $s --seconds 5 $mode | tail -n 1; done; done \
    | sed '1i | scenario | commits | senders | seconds | acked | acked/s | ack p50 ms | ack p99 ms | server CPU s | server CPU µs per message |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  echo
  for k in 1000 10000; do $load idle --tabs $k --paste | tail -n 2; done \
    | sed '1i | scenario | tabs | server RSS before (MiB) | after (MiB) | per tab (KiB) |\n| --- | --- | --- | --- | --- |'
  echo
  echo "### One account floods #general for 10 s while a victim pair talks there (a message every 50 ms) among 50 bystander tabs"
  echo
  for kind in messages mentions typing presence tabs rooms; do $load flood --kind $kind --seconds 10 | tail -n 1; done \
    | sed '1i | scenario | kind | seconds | flooder frames through | through/s | flooder errors | flooder closed | flood frames the victim got | victim sent | received | lost | p50 ms | p99 ms | max ms | bystander tabs dropped | RSS before MiB | RSS after MiB | RSS peak MiB | server CPU s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  echo
  big=$(mktemp -d)/big.redb
  $load generate --messages 1000000 --data "$big"
  echo
  $load history --data "$big"
  echo
  for mode in "" --slow-repair; do $load crash --data "$big" --rounds 3 $mode | tail -n 1; done \
    | sed '1i | scenario | commits | file MiB | round | start to serving ms | acked before the kill |\n| --- | --- | --- | --- | --- | --- |'
  echo
  $load backup --data "$big"
  rm -f "$big"
  echo
  big4=$(mktemp -d)/big4.redb
  $load generate --messages 4000000 --data "$big4"
  echo
  $load backup --data "$big4" | tail -n 1
  rm -f "$big4"
} > "$out"
