#!/usr/bin/env python3
"""rounds: ../shared/bench/compare with the spread, and rows for bench/all.sh.

    rounds.py [-c CONNS] [-d SECONDS] [-r ROUNDS] [--post BYTES] NAME=URL NAME=URL ...

Takes compare's arguments and loads the servers the same way (wrk -t1, one at a time,
round-robin, so a drift in the machine's speed hits every server alike). Besides
compare's table it prints, for every server named gantry* against every other server,
the ratio of their medians and the lowest and highest ratio of one round: a median
alone hides whether gantry led in every round.

With BENCH_TABLE set, those ratios are also appended to that file as tab-separated
rows (workload, gantry server, peer, median ratio, min, max, gantry req/s, peer req/s,
gantry p99 ms, peer p99 ms), the workload being $BENCH_LABEL and the URL's path.
Exit status 1 if any server failed a request.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.parse

LUA_POST = """
wrk.method = "POST"
wrk.body = string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
"""
LUA_LAT = """
done = function(summary, latency, requests)
  io.write(string.format("P99_US %d\\n", latency:percentile(99)))
end
"""


def run_wrk(url, conns, secs, script):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        sys.exit("rounds: wrk printed no rate for %s:\n%s" % (url, out))
    rps = float(m.group(1))
    p99 = int(re.search(r"P99_US (\d+)", out).group(1))
    bad = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        bad += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        bad += sum(int(x) for x in m.groups())
    return rps, p99, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", type=int, default=32, help="connections (default 32)")
    ap.add_argument("-d", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("-r", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--post", type=int, default=0, help="POST a body of this many bytes")
    ap.add_argument("targets", nargs="+", help="NAME=URL")
    a = ap.parse_args()
    targets = [t.split("=", 1) for t in a.targets]
    for name, url in targets:
        if not re.match(r"https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/]", url):
            sys.exit("rounds: %s is not a loopback URL" % url)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write((LUA_POST % a.post if a.post else "") + LUA_LAT)
        script = f.name
    res = {n: [] for n, _ in targets}
    try:
        for _ in range(a.r):
            for name, url in targets:
                res[name].append(run_wrk(url, a.c, a.d, script))
    finally:
        os.unlink(script)

    med = {n: statistics.median(r[0] for r in res[n]) for n, _ in targets}
    p99 = {n: statistics.median(r[1] for r in res[n]) / 1000 for n, _ in targets}
    base = med[targets[0][0]]
    print("%-28s %12s %10s %8s %8s" % ("server", "req/s (med)", "p99 ms", "failed", "ratio"))
    failed = False
    for name, _ in targets:
        bad = sum(r[2] for r in res[name])
        failed |= bad > 0
        print("%-28s %12.0f %10.2f %8d %8.2f" % (name, med[name], p99[name], bad, med[name] / base))

    label = os.environ.get("BENCH_LABEL", "")
    rows = []
    for g, gurl in targets:
        if not g.startswith("gantry"):
            continue
        for p, _ in targets:
            if p.startswith("gantry"):
                continue
            per_round = [rg[0] / rp[0] for rg, rp in zip(res[g], res[p])]
            ratio = med[g] / med[p]
            print("%s vs %s: %.2fx (rounds %.2f-%.2f)" % (g, p, ratio, min(per_round), max(per_round)))
            workload = (label + " " + urllib.parse.urlsplit(gurl).path).strip()
            if a.post:
                workload += " POST %d B" % a.post
            if a.c != 32:
                workload += " -c%d" % a.c
            rows.append([workload, g, p, "%.2f" % ratio, "%.2f" % min(per_round), "%.2f" % max(per_round),
                         "%.0f" % med[g], "%.0f" % med[p], "%.2f" % p99[g], "%.2f" % p99[p]])
    table = os.environ.get("BENCH_TABLE")
    if table and rows:
        with open(table, "a") as f:
            for r in rows:
                f.write("\t".join(r) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
