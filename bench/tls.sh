#!/usr/bin/env bash
# tls.sh: gantry's HTTPS listener against nginx with TLS 1.3 and HTTP/2 (the
# bench peers' nginx-tls), on the same 1 KB file, each loaded in turn:
#   - HTTPS/1.1 keep-alive (wrk -c32, through ../shared/bench/compare),
#   - HTTP/2 (h2load -c32 -m10),
#   - new TLS handshakes (wrk -c32 with Connection: close: one handshake a request),
# and gantry's idle RSS with TLS configured (and without, for comparison).
#
#   bench/tls.sh [ROUNDS]        (default 3; medians are printed)
#
# Environment: BENCH_DIR (default /tmp/bench-peers), PORT (gantry's HTTPS port,
# 18122; HTTP on PORT-1), SHARED (default ../shared beside the checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$HERE/../shared}"
BENCH_DIR="${BENCH_DIR:-/tmp/bench-peers}"
PORT="${PORT:-18122}"
ROUNDS="${1:-3}"
PEERS="$SHARED/bench/peers"
COMPARE="${COMPARE:-$SHARED/bench/compare}"
WORK="$(mktemp -d)"
BIN="$WORK/gantry"
NGINX=https://127.0.0.1:18104/1k.txt
GANTRY=https://127.0.0.1:$PORT/1k.txt

STARTED_NGINX=1
curl -fsSk -o /dev/null "$NGINX" 2>/dev/null && STARTED_NGINX=
cleanup() {
  if [ -n "${GANTRY_PID:-}" ]; then kill "$GANTRY_PID" 2>/dev/null; wait "$GANTRY_PID" 2>/dev/null || true; fi
  if [ -n "$STARTED_NGINX" ]; then "$PEERS" stop nginx-tls >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Built as scripts/package.sh builds what ships: a cgo build maps libc and the
# dynamic loader too, which the idle RSS would count.
(cd "$HERE" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" ./cmd/gantry)
[ -z "$STARTED_NGINX" ] || BENCH_DIR="$BENCH_DIR" "$PEERS" start nginx-tls
cat > "$WORK/gantry.toml" <<TOML
[server]
listen = ["127.0.0.1:$((PORT - 1))"]
tls_listen = ["127.0.0.1:$PORT"]
access_log = "off"
[admin]
listen = "off"
[tls]
storage = "$WORK/tls"
[[site]]
hosts = ["localhost", "127.0.0.1"]
root = "$BENCH_DIR/www"
TOML
"$BIN" serve -c "$WORK/gantry.toml" >"$WORK/gantry.log" 2>&1 &
GANTRY_PID=$!

for url in "$NGINX" "$GANTRY"; do
  for i in $(seq 100); do
    curl -fsSk -o /dev/null "$url" 2>/dev/null && break
    [ "$i" = 100 ] && { echo "tls.sh: $url not answering" >&2; cat "$WORK/gantry.log" >&2; exit 1; }
    sleep 0.1
  done
done
echo "gantry idle RSS with TLS: $(awk '/VmRSS/ {print $2, $3}' /proc/$GANTRY_PID/status)"
# The same binary serving the directory over plain HTTP, for what TLS adds.
"$BIN" serve --listen "127.0.0.1:$((PORT - 2))" --admin off --access-log off "$BENCH_DIR/www" >"$WORK/plain.log" 2>&1 &
PLAIN_PID=$!
for i in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$((PORT - 2))/1k.txt" 2>/dev/null && break
  sleep 0.1
done
echo "gantry idle RSS, plain gantry serve DIR: $(awk '/VmRSS/ {print $2, $3}' /proc/$PLAIN_PID/status)"
kill "$PLAIN_PID"; wait "$PLAIN_PID" 2>/dev/null || true

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

echo "== HTTPS/1.1, 1 KB, keep-alive (wrk -c32)"
BENCH_LABEL="HTTPS/1.1" "$COMPARE" -r "$ROUNDS" "nginx-tls=$NGINX" "gantry=$GANTRY"

h2() { h2load -c32 -m10 -n 100000 "$1" 2>/dev/null | awk '/^finished in/ {gsub(",", "", $4); print $4}'; }
close() { wrk -t1 -c32 -d10s -H "Connection: close" "$1" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }
for test in h2 close; do
  n=; g=; lo=; hi=
  for r in $(seq "$ROUNDS"); do
    nr=$($test "$NGINX"); gr=$($test "$GANTRY")
    n="$n $nr"; g="$g $gr"
    q=$(ratio "$gr" "$nr")
    lo=$(awk -v a="$q" -v b="${lo:-$q}" 'BEGIN {print (a < b) ? a : b}')
    hi=$(awk -v a="$q" -v b="${hi:-$q}" 'BEGIN {print (a > b) ? a : b}')
  done
  nm=$(echo $n | tr ' ' '\n' | median); gm=$(echo $g | tr ' ' '\n' | median)
  case $test in
    h2) label="HTTP/2 /1k.txt (h2load -c32 -m10)"; echo "== HTTP/2, 1 KB (h2load -c32 -m10 -n 100000), req/s medians of $ROUNDS" ;;
    close) label="new TLS handshakes /1k.txt (Connection: close)"; echo "== new TLS handshakes (wrk -c32, Connection: close), req/s medians of $ROUNDS" ;;
  esac
  echo "nginx-tls $nm   gantry $gm   ratio $(ratio "$gm" "$nm") (rounds $lo-$hi)   (nginx:$n; gantry:$g)"
  # bench/all.sh collects the rows; see bench/rounds.py for the columns.
  [ -z "${BENCH_TABLE:-}" ] || printf '%s\tgantry\tnginx-tls\t%s\t%s\t%s\t%s\t%s\t\t\n' \
    "$label" "$(ratio "$gm" "$nm")" "$lo" "$hi" "$gm" "$nm" >>"$BENCH_TABLE"
done
echo "gantry RSS after the runs: $(awk '/VmRSS/ {print $2, $3}' /proc/$GANTRY_PID/status)"
