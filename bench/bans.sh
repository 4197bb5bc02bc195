#!/usr/bin/env bash
# bans.sh: requests/s of gantry's static handler with 100,000 bans loaded against
# the same gantry with bans on and none held, on the bench peers' /1k.txt, loaded
# in turn by wrk through ../shared/bench/compare. The ratio is the cost of
# holding the bans and of the per-request check; the check at accept alone is
# measured by `go test -bench 'Accept|Banned' ./internal/ban/` (a connection per
# request on loopback measures the ephemeral ports, not gantry).
#
#   bench/bans.sh [compare options, e.g. -d 10 -r 5]
#
# Environment: BENCH_DIR (default /tmp/bench-peers), SHARED (default ../shared
# beside the checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$HERE/../shared}"
BENCH_DIR="${BENCH_DIR:-/tmp/bench-peers}"
COMPARE="$SHARED/bench/compare"
TMP="$(mktemp -d)"
BIN="$TMP/gantry"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

(cd "$HERE" && go build -o "$BIN" ./cmd/gantry)

# 100,000 bans of public addresses (11.0.0.0/8), none of them the client's
python3 - "$TMP/full.json" <<'PY'
import json, sys
bans = [{"source": "11.%d.%d.%d/32" % (i >> 16, (i >> 8) & 255, i & 255), "rule": "exploit",
         "sample": "GET /.env", "since": "2026-01-01T00:00:00Z", "until": "2099-01-01T00:00:00Z", "strikes": 1}
        for i in range(100000)]
json.dump({"version": 1, "bans": bans}, open(sys.argv[1], "w"))
PY

# start NAME BANS-FILE: a gantry on a free port (the port another engineer's
# server holds is never taken for this one's), its address in $ADDR.
start() {
  cat > "$TMP/$1.toml" <<TOML
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[telescope.ban]
enabled = true
file = "$2"
[[site]]
root = "$BENCH_DIR/www"
TOML
  "$BIN" serve -c "$TMP/$1.toml" 2>"$TMP/$1.log" &
  PIDS+=($!)
  for i in $(seq 300); do
    ADDR=$(sed -n 's/.*msg=serving addr=http:\/\/\([^ ]*\).*/\1/p' "$TMP/$1.log" | head -1)
    [ -n "$ADDR" ] && curl -fsS -o /dev/null "http://$ADDR/1k.txt" 2>/dev/null && return
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "bans.sh: gantry ($1) not answering:" >&2; cat "$TMP/$1.log" >&2; exit 1
}
start none "$TMP/none.json"; NONE=$ADDR
start none2 "$TMP/none2.json"; NONE2=$ADDR
start full "$TMP/full.json"; FULL=$ADDR

echo "== /1k.txt"
# none2 is a second gantry without bans: its ratio is the noise of the run
"$COMPARE" "$@" "none=http://$NONE/1k.txt" "100k=http://$FULL/1k.txt" "none2=http://$NONE2/1k.txt"
