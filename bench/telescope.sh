#!/usr/bin/env bash
# Times `gantry telescope analyze` against `tcpdump -r FILE -w /dev/null` (which only
# copies the packets) on one large capture: backscatter.trace repeated to PACKETS
# packets (default 2,000,000) with shifted timestamps. Runs alternate, ROUNDS times
# each (default 5), so drift on this shared machine hits both alike; the medians give
# Mpps, the speed ratio analyze/tcpdump, and peak RSS.
#
#   bench/telescope.sh            PACKETS=500000 ROUNDS=3 bench/telescope.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-2000000}
ROUNDS=${ROUNDS:-5}
command -v tcpdump >/dev/null || { echo "telescope.sh: tcpdump not found (scripts/install-peers.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go test -c -o "$work/telescope.test" ./internal/telescope
GANTRY_TELESCOPE_REPEAT=$PACKETS "$work/telescope.test" internal/telescope/testdata/backscatter.trace "$work/big.pcap"
echo "capture: $PACKETS packets, $(du -m "$work/big.pcap" | cut -f1) MiB"

runners=(gantry tcpdump)
go build -o "$work/gantry" ./cmd/gantry

run() { # name -> the command line for that runner
	case $1 in
	gantry) echo "$work/gantry" telescope analyze "$work/big.pcap" --format json ;;
	tcpdump) echo tcpdump -r "$work/big.pcap" -w /dev/null ;;
	esac
}

# measure NAME: one timed run; appends "start end rss_kib" to $work/res.NAME.
measure() {
	local name=$1 cmd start end rss
	read -r -a cmd <<<"$(run "$name")"
	if [ -x /usr/bin/time ]; then
		start=$(date +%s.%N)
		/usr/bin/time -f '%M' -o "$work/rss" "${cmd[@]}" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
		end=$(date +%s.%N)
		rss=$(tail -1 "$work/rss")
	else
		# No /usr/bin/time: poll the high-water mark while the process runs.
		start=$(date +%s.%N)
		"${cmd[@]}" >/dev/null 2>"$work/stderr" &
		local pid=$! hwm
		rss=0
		while hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null); do
			[ -n "$hwm" ] && [ "$hwm" -gt "$rss" ] && rss=$hwm
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.01
		done
		wait "$pid" || { cat "$work/stderr" >&2; exit 1; }
		end=$(date +%s.%N)
	fi
	echo "$start $end $rss" >>"$work/res.$name"
}

for ((i = 0; i < ROUNDS; i++)); do
	for r in "${runners[@]}"; do measure "$r"; done
done

python3 - "$work" "$PACKETS" "${runners[@]}" <<'EOF'
import os, statistics, sys
work, packets, runners = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {}
for r in runners:
    rows = [l.split() for l in open(f"{work}/res.{r}")]
    res[r] = (statistics.median(float(e) - float(s) for s, e, _ in rows), max(int(m) for _, _, m in rows))
base = res["tcpdump"][0]
label = {"gantry": "gantry telescope analyze", "tcpdump": "tcpdump -r -w /dev/null"}
print(f"{'runner':28} {'median s':>9} {'Mpps':>7} {'speed vs tcpdump':>17} {'peak RSS MiB':>13}")
for r in runners:
    s, rss = res[r]
    print(f"{label[r]:28} {s:9.3f} {packets / s / 1e6:7.2f} {base / s:16.2f}x {rss / 1024:13.1f}")
# bench/all.sh collects the rows; see bench/rounds.py for the columns (rates in packets/s here).
times = {r: [float(l.split()[1]) - float(l.split()[0]) for l in open(f"{work}/res.{r}")] for r in runners}
per_round = [t / g for g, t in zip(times["gantry"], times["tcpdump"])]
table = os.environ.get("BENCH_TABLE")
if table:
    with open(table, "a") as f:
        f.write("\t".join([f"pcap analyze, {packets:,} packets (peak RSS {res['gantry'][1] / 1024:.0f} vs {res['tcpdump'][1] / 1024:.0f} MiB)",
                           "gantry", "tcpdump -w /dev/null", f"{base / res['gantry'][0]:.2f}", f"{min(per_round):.2f}",
                           f"{max(per_round):.2f}", f"{packets / res['gantry'][0]:.0f}", f"{packets / base:.0f}", "", ""]) + "\n")
EOF
