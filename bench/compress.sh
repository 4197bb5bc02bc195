#!/usr/bin/env bash
# compress.sh: requests/s of gantry compressing a 100 KB HTML page on the fly
# against nginx with "gzip on" at the same level (gzip_comp_level 1, nginx's
# default; gantry's gzip level is 1 too), both asked with Accept-Encoding: gzip,
# loaded in turn by wrk. The bench peers' nginx has no gzip, so this script runs
# its own on another loopback port; both have access logging off.
#
#   bench/compress.sh [-c CONNS] [-d SECONDS] [-r ROUNDS]
#
# Environment: NGINX_PORT (18130), PORT (gantry's, 18131).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NGINX_PORT="${NGINX_PORT:-18130}"
PORT="${PORT:-18131}"
CONNS=32 SECS=5 ROUNDS=3
while getopts c:d:r: opt; do
  case $opt in
    c) CONNS=$OPTARG ;; d) SECS=$OPTARG ;; r) ROUNDS=$OPTARG ;;
    *) echo "usage: $0 [-c CONNS] [-d SECONDS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done
WORK="$(mktemp -d)"
chmod 755 "$WORK"

cleanup() {
  if [ -n "${GANTRY_PID:-}" ]; then kill "$GANTRY_PID" 2>/dev/null; wait "$GANTRY_PID" 2>/dev/null || true; fi
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A page that compresses as real HTML does (about 4:1), not as a repeated line.
mkdir -p "$WORK/www"
python3 - "$WORK/www/page.html" <<'PY'
import random, sys
random.seed(16)
words = ("server request response header gantry static route proxy worker client "
         "the of and to in is that for it with as was on be by this are or from at "
         "configuration compression cache file directory handler process socket").split()
out = ["<!DOCTYPE html>\n<html><head><title>bench</title></head><body>\n"]
n = 0
while sum(map(len, out)) < 100 * 1024 - 64:
    n += 1
    para = " ".join(random.choice(words) for _ in range(random.randint(20, 60)))
    out.append('<p class="c%d" id="p%d">%s</p>\n' % (n % 7, n, para))
out.append("</body></html>\n")
open(sys.argv[1], "w").write("".join(out))
PY
chmod -R a+rX "$WORK/www"

cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi;
  uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  gzip on; gzip_comp_level 1; gzip_vary on;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx.conf"
(cd "$HERE" && go build -o "$WORK/gantry" ./cmd/gantry)
"$WORK/gantry" serve "$WORK/www" --listen "127.0.0.1:$PORT" --admin off --access-log off &
GANTRY_PID=$!

for url in "http://127.0.0.1:$NGINX_PORT/page.html" "http://127.0.0.1:$PORT/page.html"; do
  for i in $(seq 100); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && break
    [ "$i" = 100 ] && { echo "compress.sh: $url not answering" >&2; exit 1; }
    sleep 0.1
  done
  enc=$(curl -fsS -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
  [ "$enc" = gzip ] || { echo "compress.sh: $url does not answer in gzip" >&2; exit 1; }
  size=$(curl -fsS -H 'Accept-Encoding: gzip' "$url" | wc -c)
  echo "$url: $(wc -c <"$WORK/www/page.html") bytes, $size in gzip"
done

# Round-robin, as ../shared/bench/compare does, so that drift hits both alike.
declare -A RPS
for r in $(seq "$ROUNDS"); do
  for name in nginx gantry; do
    p=$NGINX_PORT; [ $name = gantry ] && p=$PORT
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$p/page.html")
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "$name: failed requests:"; echo "$out"; exit 1; fi
    RPS[$name]+="$(awk '/Requests\/sec/{print $2}' <<<"$out") "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
n=$(median <<<"${RPS[nginx]}"); g=$(median <<<"${RPS[gantry]}")
printf '%-8s %10s req/s\n%-8s %10s req/s  %.2fx nginx\n' nginx "$n" gantry "$g" "$(echo "$g / $n" | bc -l)"
