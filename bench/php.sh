#!/usr/bin/env bash
# php.sh: hello.php requests/s, gantry vs nginx + php-fpm and Apache + mod_proxy_fcgi.
# gantry talks to the same php-fpm pool as nginx (2 static workers), over pooled
# FCGI_KEEP_CONN connections. Access logs off on both sides. Ratios only mean something
# within one run.
#
#   bench/php.sh [compare options, e.g. -c 32 -d 5 -r 3]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$PWD/../shared}
PEERS=$SHARED/bench/peers
COMPARE=${COMPARE:-$SHARED/bench/compare}
BENCH_DIR=${BENCH_DIR:-/tmp/bench-peers}
PORT=${PORT:-18499}
BIN=${BIN:-/tmp/gantry-php-bench}

[ -e /tmp/peers-installed ] || { echo "php.sh: peers not installed yet (/tmp/peers-installed missing)" >&2; exit 1; }
go build -o "$BIN" ./cmd/gantry
# Peers already up (another run, another engineer) are used as they are and left running.
STARTED=""
if ! curl -sf -o /dev/null http://127.0.0.1:18401/hello.php || ! curl -sf -o /dev/null http://127.0.0.1:18402/hello.php; then
  "$PEERS" start nginx-php-fpm apache-php-fpm >/dev/null
  STARTED="nginx-php-fpm apache-php-fpm"
fi
SOCK="$BENCH_DIR/run/nginx-php-fpm-fpm/fpm.sock"

"$BIN" serve "$BENCH_DIR/www" --listen "127.0.0.1:$PORT" --admin off --access-log off --php "unix:$SOCK" >/tmp/gantry-php-bench.log 2>&1 &
GANTRY=$!
trap 'kill $GANTRY 2>/dev/null; wait $GANTRY 2>/dev/null; [ -z "$STARTED" ] || "$PEERS" stop $STARTED' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/hello.php" && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/hello.php" >/dev/null || { echo "php.sh: gantry did not answer; see /tmp/gantry-php-bench.log" >&2; exit 1; }

"$COMPARE" "$@" \
  gantry="http://127.0.0.1:$PORT/hello.php" \
  nginx-php-fpm=http://127.0.0.1:18401/hello.php \
  apache-php-fpm=http://127.0.0.1:18402/hello.php
