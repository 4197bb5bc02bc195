#!/usr/bin/env bash
# static.sh: requests/s of gantry's static file handler against nginx and lighttpd,
# on the same files (the bench peers' tree: /1k.txt and /100k.bin), loaded in turn
# by wrk through ../shared/bench/compare. All have access logging off.
#
#   bench/static.sh [compare options, e.g. -d 10 -r 5]
#
# Environment: BENCH_DIR (default /tmp/bench-peers), PORT (gantry's port, 18120),
# SHARED (default ../shared beside the checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$HERE/../shared}"
BENCH_DIR="${BENCH_DIR:-/tmp/bench-peers}"
PORT="${PORT:-18120}"
PEERS="$SHARED/bench/peers"
COMPARE="${COMPARE:-$SHARED/bench/compare}"
BIN="$(mktemp -d)/gantry"

# Leave a peer running if it already was (another benchmark may be using it).
STARTED=()
for peer in nginx-static:18101 lighttpd-static:18103; do
  curl -fsS -o /dev/null "http://127.0.0.1:${peer#*:}/1k.txt" 2>/dev/null || STARTED+=("${peer%%:*}")
done

cleanup() {
  if [ -n "${GANTRY_PID:-}" ]; then kill "$GANTRY_PID" 2>/dev/null; wait "$GANTRY_PID" 2>/dev/null || true; fi
  [ ${#STARTED[@]} -eq 0 ] || "$PEERS" stop "${STARTED[@]}" >/dev/null 2>&1 || true
  rm -rf "$(dirname "$BIN")"
}
trap cleanup EXIT

(cd "$HERE" && go build -o "$BIN" ./cmd/gantry)
[ ${#STARTED[@]} -eq 0 ] || BENCH_DIR="$BENCH_DIR" "$PEERS" start "${STARTED[@]}"
"$BIN" serve "$BENCH_DIR/www" --listen "127.0.0.1:$PORT" --admin off --access-log off &
GANTRY_PID=$!

# Wait until both answer, with a deadline rather than a fixed sleep.
for url in "http://127.0.0.1:18101/1k.txt" "http://127.0.0.1:18103/1k.txt" "http://127.0.0.1:$PORT/1k.txt"; do
  for i in $(seq 100); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && break
    [ "$i" = 100 ] && { echo "static.sh: $url not answering" >&2; exit 1; }
    sleep 0.1
  done
done

for f in 1k.txt 100k.bin; do
  echo "== /$f"
  "$COMPARE" "$@" "nginx=http://127.0.0.1:18101/$f" "lighttpd=http://127.0.0.1:18103/$f" "gantry=http://127.0.0.1:$PORT/$f"
done
