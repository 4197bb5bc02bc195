#!/usr/bin/env bash
# all.sh: every comparison the project has, each peer loaded in turn (bench/rounds.py:
# wrk round-robin), ROUNDS rounds each, and one markdown table of gantry's ratio to
# each peer: the ratio of the medians and its spread (the lowest and highest ratio of
# one round). The table goes to bench/RESULTS.md with the date and the machine, and
# replaces the README's copy between its bench:all markers.
#
#   bench/all.sh                  ROUNDS=3 SECONDS_PER_RUN=3 SCALING=0 bench/all.sh   (a quick look)
#
# Needs the bench peers (../shared/bench/peers install) and a quiet machine: anything
# else running skews the servers loaded while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
export ROUNDS
SECS=${SECONDS_PER_RUN:-5}
OUT=${OUT:-bench/RESULTS.md}
export COMPARE="$PWD/bench/rounds.py"
export BENCH_TABLE
BENCH_TABLE=$(mktemp)
trap 'rm -f "$BENCH_TABLE"' EXIT

run() { # label script args...
  local label=$1; shift
  echo "### $label: $*"
  BENCH_LABEL=$label "$@" || echo "all.sh: $* failed (its rows may be missing)" >&2
}
run static bash bench/static.sh -r "$ROUNDS" -d "$SECS"
run CGI bash bench/cgi.sh -r "$ROUNDS" -d "$SECS"
run PHP bash bench/php.sh -r "$ROUNDS" -d "$SECS"
run WSGI bash bench/wsgi.sh -r "$ROUNDS" -d "$SECS"
run TLS bash bench/tls.sh "$ROUNDS"
run pcap bash bench/telescope.sh
# How cost grows (connections, idle connections, a large tree, body sizes, capture
# sizes): small tables beside nginx's and tcpdump's, after the main one.
SCALING_TABLES=$(mktemp)
trap 'rm -f "$BENCH_TABLE" "$SCALING_TABLES"' EXIT
if [ "${SCALING:-1}" != 0 ]; then
  BENCH_TABLE=/dev/null OUT=$SCALING_TABLES run scaling bash bench/scaling.sh
fi

python3 - "$BENCH_TABLE" "$OUT" "$ROUNDS" "$SCALING_TABLES" <<'EOF'
import datetime, os, platform, re, subprocess, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out, rounds = sys.argv[2], sys.argv[3]
scaling = open(sys.argv[4]).read().strip()

# The issue's targets: (workload pattern, peer pattern) -> (ratio, whether every round must reach it).
targets = [
    (r"^static /1k", "lighttpd", 1.0, False), (r"^static /1k", "nginx", 1.2, False),
    (r"^static /100k", "", 1.1, False),
    (r"^CGI", "lighttpd", 1.0, True),
    (r"^WSGI /$", "uwsgi", 1.2, True), (r"^WSGI /hello/", "uwsgi", 1.1, False),
    (r"^HTTPS|^HTTP/2|^new TLS", "nginx-tls", 1.0, False),
    (r"^pcap", "tcpdump", 1.0, False),
]
def target(workload, peer):
    for w, p, r, every in targets:
        if re.search(w, workload) and p in peer:
            return r, every
    return None, False

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2]
lines = [
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), {mem} GiB, "
    f"Linux {platform.release()}, {go}; {rounds} rounds, medians; the spread is the lowest "
    "and highest ratio of one round. Made by `bench/all.sh`.",
    "",
    "| workload | gantry | peer | ratio | spread | gantry req/s | peer req/s | p99 ms (gantry / peer) | target |",
    "|---|---|---|---|---|---|---|---|---|",
]
for w, g, p, ratio, lo, hi, grps, prps, gp99, pp99 in rows:
    t, every = target(w, p)
    mark = ""
    if t is not None:
        ok = float(lo if every else ratio) >= t
        mark = f"≥ {t:.1f}×{' every round' if every else ''} {'✓' if ok else '✗'}"
    p99 = f"{gp99} / {pp99}" if gp99 else ""
    grps, prps = (f"{float(x):,.0f}" for x in (grps, prps))
    lines.append(f"| {w} | {g} | {p} | {ratio}× | {lo}–{hi} | {grps} | {prps} | {p99} | {mark} |")
if scaling:
    lines += ["", "How cost grows (`bench/scaling.sh`, run by `bench/all.sh`):", "", scaling]
table = "\n".join(lines) + "\n"
open(out, "w").write(table)
print(table)

readme = open("README.md").read()
start, end = "<!-- bench:all -->", "<!-- /bench:all -->"
if start in readme and end in readme:
    head, rest = readme.split(start, 1)
    readme = head + start + "\n" + table + end + rest.split(end, 1)[1]
    open("README.md", "w").write(readme)
EOF
