#!/usr/bin/env bash
# Times `gantry telescope analyze` against `tcpdump -r FILE -w /dev/null` (which only
# copies the packets) on one large capture: backscatter.trace repeated to PACKETS
# packets (default 2,000,000) with shifted timestamps, once as pcap and once as
# pcapng. Runs alternate, ROUNDS times each (default 5), so drift on this shared
# machine hits both alike; the medians give Mpps, the speed ratio analyze/tcpdump,
# the CPU seconds (user+sys, steadier than wall time on a loaded machine) and peak
# RSS. gantry is built as scripts/package.sh builds the release (CGO_ENABLED=0).
#
#   bench/telescope.sh            PACKETS=500000 ROUNDS=3 FORMATS=pcapng bench/telescope.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-2000000}
ROUNDS=${ROUNDS:-5}
FORMATS=${FORMATS:-pcap pcapng}
command -v tcpdump >/dev/null || { echo "telescope.sh: tcpdump not found (scripts/install-peers.sh installs it)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "telescope.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go test -c -o "$work/telescope.test" ./internal/telescope
for fmt in $FORMATS; do
	GANTRY_TELESCOPE_REPEAT=$PACKETS "$work/telescope.test" internal/telescope/testdata/backscatter.trace "$work/big.$fmt"
	echo "capture: $PACKETS packets, $fmt, $(du -m "$work/big.$fmt" | cut -f1) MiB"
done

runners=(gantry tcpdump)
CGO_ENABLED=0 go build -trimpath -o "$work/gantry" ./cmd/gantry

run() { # name file -> the command line for that runner
	case $1 in
	gantry) echo "$work/gantry" telescope analyze "$2" --format json ;;
	tcpdump) echo tcpdump -r "$2" -w /dev/null ;;
	esac
}

# measure NAME FORMAT: one timed run; appends "wall cpu rss_kib" to $work/res.NAME.FORMAT.
measure() {
	local cmd
	read -r -a cmd <<<"$(run "$1" "$work/big.$2")"
	/usr/bin/time -f '%e %U %S %M' -o "$work/time" "${cmd[@]}" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
	tail -1 "$work/time" | awk '{print $1, $2 + $3, $4}' >>"$work/res.$1.$2"
}

for fmt in $FORMATS; do
	for ((i = 0; i < ROUNDS; i++)); do
		for r in "${runners[@]}"; do measure "$r" "$fmt"; done
	done
done

python3 - "$work" "$PACKETS" "$FORMATS" "${runners[@]}" <<'PY'
import os, statistics, sys
work, packets, formats, runners = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
label = {"gantry": "gantry telescope analyze", "tcpdump": "tcpdump -r -w /dev/null"}
print(f"{'runner':36} {'median s':>9} {'Mpps':>7} {'speed vs tcpdump':>17} {'CPU s':>6} {'CPU vs tcpdump':>15} {'peak RSS MiB':>13}")
for fmt in formats:
    rows = {r: [tuple(map(float, l.split())) for l in open(f"{work}/res.{r}.{fmt}")] for r in runners}
    med = {r: (statistics.median(w for w, _, _ in rows[r]), statistics.median(c for _, c, _ in rows[r]),
               max(m for _, _, m in rows[r])) for r in runners}
    base = med["tcpdump"]
    for r in runners:
        s, cpu, rss = med[r]
        # /usr/bin/time counts CPU in 10 ms steps: a small capture may read as 0.
        cpuratio = f"{base[1] / cpu:14.2f}x" if cpu else f"{'-':>15}"
        print(f"{label[r] + ', ' + fmt:36} {s:9.3f} {packets / s / 1e6:7.2f} {base[0] / s:16.2f}x {cpu:6.3f} {cpuratio} {rss / 1024:13.1f}")
    # bench/all.sh collects the rows; see bench/rounds.py for the columns (rates in packets/s here).
    per_round = [t[0] / g[0] for g, t in zip(rows["gantry"], rows["tcpdump"])]
    table = os.environ.get("BENCH_TABLE")
    if table:
        with open(table, "a") as f:
            f.write("\t".join([f"pcap analyze, {packets:,} packets, {fmt} (peak RSS {med['gantry'][2] / 1024:.0f} vs {base[2] / 1024:.0f} MiB)",
                               "gantry", "tcpdump -w /dev/null", f"{base[0] / med['gantry'][0]:.2f}", f"{min(per_round):.2f}",
                               f"{max(per_round):.2f}", f"{packets / med['gantry'][0]:.0f}", f"{packets / base[0]:.0f}", "", ""]) + "\n")
PY
