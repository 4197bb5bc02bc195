#!/usr/bin/env bash
# Loads gantry with wrk -c32 while it reloads its config ten times (SIGHUP), and
# fails if a single request failed. Usage: bench/reload.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-12}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$work/1k.txt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/gantry.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "$work"
TOML
go build -o "$work/gantry" ./cmd/gantry
"$work/gantry" serve -c "$work/gantry.toml" 2>"$work/err.log" &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/1k.txt" && break; sleep 0.1; done
wrk -t2 -c32 -d"${secs}s" "http://127.0.0.1:$port/1k.txt" >"$work/wrk.txt" &
wrkpid=$!
for i in $(seq 10); do sleep "$(echo "$secs / 12" | bc -l)"; kill -HUP $pid; done
wait $wrkpid
cat "$work/wrk.txt"
reloads=$(grep -c "configuration reloaded" "$work/err.log" || true)
echo "reloads: $reloads"
if grep -qE "Non-2xx|Socket errors" "$work/wrk.txt" || [ "$reloads" -ne 10 ]; then
  echo "FAIL: failed requests or missed reloads"; exit 1
fi
echo "OK: zero failed requests during 10 reloads"
