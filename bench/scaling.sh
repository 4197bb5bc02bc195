#!/usr/bin/env bash
# scaling.sh: how gantry's cost grows as the work grows, beside nginx's (tcpdump's for
# captures), each section a small markdown table:
#   conns   the 1 KB file at 32, 256 and 1024 connections: req/s and p99
#   idle    10,000 idle keep-alive connections: RSS and descriptors (nginx's master
#           and workers counted together)
#   tree    a tree of 100,000 1 KB files hit at random: req/s, and gantry's RSS after
#           each round (its caches are bounded, so it must level off)
#   bodies  POST bodies 1 KB -> 10 MB to PHP and WSGI (bench/body.sh at each size)
#   pcap    captures of about 200 MB and 2 GB (bench/telescope.sh): packets/s, peak RSS
#
#   bench/scaling.sh              SECTIONS="conns idle" ROUNDS=3 bench/scaling.sh
#
# With OUT set the tables are appended to that file too (bench/all.sh sets it). nginx
# here is a private one configured as the bench peers' nginx-static, with room for
# 10,000 connections (worker_connections 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-5}
SECTIONS=${SECTIONS:-conns idle tree bodies pcap}
BENCH_DIR=${BENCH_DIR:-/tmp/bench-peers}
OUT=${OUT:-/dev/null}
G=18140 N=18141 GT=18142 NT=18143
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/gantry-scaling.XXXXXX)
chmod 755 "$WORK"
BIN=$WORK/gantry
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "$*" | tee -a "$OUT"; }
wait_for() {
  for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "scaling.sh: $1 did not answer" >&2; exit 1
}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

CGO_ENABLED=0 go build -o "$BIN" ./cmd/gantry
if has tree; then
  # 100 directories of 1,000 files: a directory per 1,000 like most sites' uploads.
  python3 - "$WORK/tree" <<'EOF'
import os, sys
root = sys.argv[1]
body = b"x" * 1023 + b"\n"
for d in range(100):
    os.makedirs(f"{root}/d{d:02d}")
    for f in range(1000):
        with open(f"{root}/d{d:02d}/f{f:03d}.txt", "wb") as fh:
            fh.write(body)
EOF
  chmod -R a+rX "$WORK/tree"
fi
mkdir -p "$WORK/tree"
cat >"$WORK/nginx.conf" <<EOF
user www-data;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 20000; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi;
  uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  server { listen 127.0.0.1:$N backlog=4096; root $BENCH_DIR/www; }
  server { listen 127.0.0.1:$NT backlog=4096; root $WORK/tree; }
}
EOF
nginx -c "$WORK/nginx.conf"
"$BIN" serve "$BENCH_DIR/www" --listen "127.0.0.1:$G" --admin off --access-log off >"$WORK/gantry.log" 2>&1 &
GPID=$!
pids+=("$GPID")
"$BIN" serve "$WORK/tree" --listen "127.0.0.1:$GT" --admin off --access-log off >"$WORK/gantry-tree.log" 2>&1 &
GTPID=$!
pids+=("$GTPID")
wait_for "http://127.0.0.1:$G/1k.txt"
wait_for "http://127.0.0.1:$N/1k.txt"
NPID=$(cat "$WORK/nginx.pid")

if has conns; then
  tab=$(mktemp -p "$WORK")
  for c in 32 256 1024; do
    BENCH_TABLE=$tab BENCH_LABEL=static python3 bench/rounds.py -c "$c" -r "$ROUNDS" -d "$SECS" \
      "nginx=http://127.0.0.1:$N/1k.txt" "gantry=http://127.0.0.1:$G/1k.txt" >/dev/null || true
  done
  say ""
  say "| connections, 1 KB file | gantry req/s | nginx req/s | ratio (spread) | p99 ms gantry / nginx |"
  say "|---|---|---|---|---|"
  while IFS=$'\t' read -r w _ _ ratio lo hi grps nrps gp np; do
    c=${w##*-c}; [ "$c" = "$w" ] && c=32
    say "| $c | $grps | $nrps | ${ratio}× ($lo–$hi) | $gp / $np |"
  done <"$tab"
fi

if has idle; then
  say ""
  say "| 10,000 idle keep-alive connections | RSS MiB | descriptors |"
  say "|---|---|---|"
  for s in gantry:$G:$GPID nginx:$N:$NPID; do
    IFS=: read -r name port pid <<<"$s"
    before=$(python3 bench/idle.py 0 "http://127.0.0.1:$port/1k.txt" "$pid" | sed 's/.*rss_kib=\([0-9]*\).*/\1/')
    line=$(python3 bench/idle.py 10000 "http://127.0.0.1:$port/1k.txt" "$pid")
    echo "$name: $line (idle before: $before KiB)"
    eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/local_/')"
    [ "$local_open" = 10000 ] || echo "scaling.sh: $name kept only $local_open of 10000 connections open" >&2
    say "| $name | $(awk -v k="$local_rss_kib" 'BEGIN {printf "%.1f", k / 1024}') (idle: $(awk -v k="$before" 'BEGIN {printf "%.1f", k / 1024}')) | $local_fds |"
  done
fi

if has tree; then
  cat >"$WORK/random.lua" <<'EOF'
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/d%02d/f%03d.txt", math.random(0, 99), math.random(0, 999)))
end
done = function(summary, latency, requests)
  io.write(string.format("P99_US %d\n", latency:percentile(99)))
end
EOF
  wait_for "http://127.0.0.1:$GT/d00/f000.txt"
  wait_for "http://127.0.0.1:$NT/d00/f000.txt"
  say ""
  say "| 100,000 files at random, round | gantry req/s | nginx req/s | ratio | gantry RSS MiB after |"
  say "|---|---|---|---|---|"
  for r in $(seq "$ROUNDS"); do
    g=$(wrk -t1 -c32 -d"${SECS}s" -s "$WORK/random.lua" "http://127.0.0.1:$GT/" | awk '/Requests\/sec/ {print $2}')
    n=$(wrk -t1 -c32 -d"${SECS}s" -s "$WORK/random.lua" "http://127.0.0.1:$NT/" | awk '/Requests\/sec/ {print $2}')
    rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$GTPID/status")
    say "| $r | ${g%.*} | ${n%.*} | $(awk -v a="$g" -v b="$n" 'BEGIN {printf "%.2f", a / b}')× | $rss |"
  done
fi

if has bodies; then
  tab=$(mktemp -p "$WORK")
  for size in 1024 65536 1048576 10485760; do
    SIZE=$size BENCH_TABLE=$tab BENCH_LABEL=body COMPARE="$ROOT/bench/rounds.py" \
      bash bench/body.sh -c 8 -r "$ROUNDS" -d "$SECS" >/dev/null || echo "scaling.sh: body.sh at $size bytes failed" >&2
  done
  say ""
  say "| POST body (-c8) | gantry | peer | gantry req/s | peer req/s | ratio (spread) |"
  say "|---|---|---|---|---|---|"
  while IFS=$'\t' read -r w g p ratio lo hi grps prps _ _; do
    b=${w#*POST }; b=${b% -c*}
    say "| $b | $g | $p | $grps | $prps | ${ratio}× ($lo–$hi) |"
  done <"$tab"
fi

if has pcap; then
  tab=$(mktemp -p "$WORK")
  # backscatter.trace repeated: about 82 bytes a packet on disk.
  for packets in 2500000 25000000; do
    PACKETS=$packets ROUNDS=1 BENCH_TABLE=$tab bash bench/telescope.sh >/dev/null || echo "scaling.sh: telescope.sh at $packets packets failed" >&2
  done
  say ""
  say "| capture | gantry packets/s | tcpdump packets/s | ratio |"
  say "|---|---|---|---|"
  while IFS=$'\t' read -r w _ _ ratio _ _ grate trate _ _; do
    say "| ${w#pcap analyze, } | $grate | $trate | ${ratio}× |"
  done <"$tab"
fi
