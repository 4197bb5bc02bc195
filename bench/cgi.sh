#!/usr/bin/env bash
# cgi.sh: requests/s of gantry's CGI handler against lighttpd mod_cgi and Apache
# mod_cgid, on the bench peers' tree: /cgi-bin/hello (a C program, so the figure is
# the server's fork/exec path) and /cgi-bin/hello.cgi (a shell script). gantry serves
# the tree with `gantry serve DIR`, which maps DIR/cgi-bin/ to CGI; access logs off.
# The servers are loaded in turn by wrk through ../shared/bench/compare, and the
# last lines give gantry's ratio to each peer from the same run.
#
#   bench/cgi.sh [compare options, e.g. -d 10 -r 5]
#
# Environment: BENCH_DIR (default /tmp/bench-peers), PORT (gantry's port, 18130),
# SHARED (default ../shared beside the checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$HERE/../shared}"
BENCH_DIR="${BENCH_DIR:-/tmp/bench-peers}"
PORT="${PORT:-18130}"
PEERS="$SHARED/bench/peers"
COMPARE="${COMPARE:-$SHARED/bench/compare}"
BIN="$(mktemp -d)/gantry"

cleanup() {
  [ -n "${GANTRY_PID:-}" ] && kill "$GANTRY_PID" 2>/dev/null && wait "$GANTRY_PID" 2>/dev/null
  "$PEERS" stop lighttpd-cgi apache-cgi >/dev/null 2>&1 || true
  rm -rf "$(dirname "$BIN")"
}
trap cleanup EXIT

(cd "$HERE" && go build -o "$BIN" ./cmd/gantry)
# A run that was interrupted may have left them up: restart them fresh.
BENCH_DIR="$BENCH_DIR" "$PEERS" stop lighttpd-cgi apache-cgi >/dev/null 2>&1 || true
BENCH_DIR="$BENCH_DIR" "$PEERS" start lighttpd-cgi apache-cgi
LOG="$(dirname "$BIN")/gantry.log"
"$BIN" serve "$BENCH_DIR/www" --listen "127.0.0.1:$PORT" --admin off --access-log off 2>"$LOG" &
GANTRY_PID=$!

# Wait until all three answer, with a deadline rather than a fixed sleep.
for port in "$PORT" 18302 18301; do
  url="http://127.0.0.1:$port/cgi-bin/hello"
  for i in $(seq 100); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && break
    [ "$i" = 100 ] && { echo "cgi.sh: $url not answering" >&2; exit 1; }
    sleep 0.1
  done
done

status=0
for path in /cgi-bin/hello /cgi-bin/hello.cgi; do
  echo "== $path"
  # compare exits 1 when any server failed a request; the table still counts.
  out=$("$COMPARE" "$@" "gantry=http://127.0.0.1:$PORT$path" "lighttpd=http://127.0.0.1:18302$path" \
    "apache=http://127.0.0.1:18301$path") || status=1
  echo "$out"
  echo "$out" | awk '$1 == "gantry" { g = $2 } $1 == "lighttpd" || $1 == "apache" { r[$1] = $2 }
    END { for (p in r) printf "gantry / %s: %.2fx\n", p, g / r[p] }'
done
if grep -q 'level=ERROR' "$LOG"; then
  echo "gantry logged errors:" >&2
  grep 'level=ERROR' "$LOG" | tail -5 >&2
  status=1
fi
exit $status
