#!/usr/bin/env bash
# wsgi.sh: WSGI requests/s, gantry (daemon mode) vs nginx + uWSGI, nginx + gunicorn and
# Apache mod_wsgi daemon mode, all with 2 Python processes; and gantry's embedded mode
# (the python build: one process, 4 Python threads) vs Apache mod_wsgi embedded mode.
#
#   1. hello world: ../shared/bench/apps/hello_wsgi.py
#   2. a Django page: /hello/ of internal/wsgi/testdata/django (full middleware stack:
#      sessions, CSRF, auth, messages), gantry vs nginx + uWSGI started here the same way
#      as the nginx-uwsgi peer.
#
# Access logs are off on every server. Also prints the RSS of each gantry worker, and
# of gantry with Django embedded against uWSGI's master and workers together. Ratios only mean something within one run.
#
#   bench/wsgi.sh [compare options, e.g. -c 32 -d 5 -r 3]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$PWD/../shared}
PEERS=$SHARED/bench/peers
COMPARE=${COMPARE:-$SHARED/bench/compare}
BENCH_DIR=${BENCH_DIR:-/tmp/bench-peers}
PY=${PY:-/usr/bin/python3}
PORT=${PORT:-18290}
DJ_PORT=${DJ_PORT:-18291}
DJ_PEER_PORT=${DJ_PEER_PORT:-18292}
EMB_PORT=${EMB_PORT:-18293}
DJ_EMB_PORT=${DJ_EMB_PORT:-18294}
BIN=${BIN:-/tmp/gantry}
WORK=$(mktemp -d /tmp/gantry-wsgi-bench.XXXXXX)

[ -e /tmp/peers-installed ] || { echo "wsgi.sh: peers not installed yet (/tmp/peers-installed missing)" >&2; exit 1; }
go build -o "$BIN" ./cmd/gantry
go build -tags python -o "$BIN-python" ./cmd/gantry
# Start the peers that are not already up (another bench may be using them), and
# stop only those at the end.
started=()
for peer in nginx-uwsgi:18202 nginx-gunicorn:18206 apache-modwsgi-daemon:18203 apache-modwsgi-embedded:18204; do
  curl -sf -o /dev/null "http://127.0.0.1:${peer#*:}/" && continue
  "$PEERS" start "${peer%%:*}" >/dev/null
  started+=("${peer%%:*}")
done

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -f "$WORK/uwsgi.pid" ] && kill -INT "$(cat "$WORK/uwsgi.pid")" 2>/dev/null || true
  [ ${#started[@]} -eq 0 ] || "$PEERS" stop "${started[@]}" >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # url log
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "wsgi.sh: $1 did not answer; see $2" >&2; exit 1
}

rss() { # pattern -> RSS in kB of each matching process
  for p in $(pgrep -f "$1"); do awk '/VmRSS/ {printf "%s ", $2}' "/proc/$p/status"; done
}

embedded() { # port chdir app [toml lines...] -> starts gantry with the app embedded
  local port=$1 dir=$2 app=$3; shift 3
  { printf '[server]\nlisten = ["127.0.0.1:%s"]\naccess_log = "off"\n[admin]\nlisten = "off"\n' "$port"
    printf '[[site]]\n  [[site.route]]\n  path = "/"\n  wsgi = "%s"\n  chdir = "%s"\n  python = "%s"\n  mode = "embedded"\n' "$app" "$dir" "$PY"
    for l in "$@"; do printf '  %s\n' "$l"; done; } >"$WORK/embedded-$port.toml"
  "$BIN-python" serve -c "$WORK/embedded-$port.toml" >"$WORK/gantry-embedded-$port.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$port/${EMB_PATH:-}" "$WORK/gantry-embedded-$port.log"
}

# 1. hello world
"$BIN" serve "$BENCH_DIR/apps" --wsgi hello_wsgi:application --python "$PY" \
  --listen "127.0.0.1:$PORT" --admin off --access-log off >"$WORK/gantry-hello.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$PORT/" "$WORK/gantry-hello.log"
embedded "$EMB_PORT" "$BENCH_DIR/apps" hello_wsgi:application
echo "== hello world (2 processes each; gantry 4 threads per process; embedded: 1 process, 4 threads)"
"$COMPARE" "$@" \
  nginx-uwsgi=http://127.0.0.1:18202/ \
  gantry="http://127.0.0.1:$PORT/" \
  gantry-embedded="http://127.0.0.1:$EMB_PORT/" \
  apache-modwsgi-embedded=http://127.0.0.1:18204/ \
  nginx-gunicorn=http://127.0.0.1:18206/ \
  apache-modwsgi-daemon=http://127.0.0.1:18203/ || true
echo "RSS per worker (kB): gantry: $(rss 'gantry_wsgi_worker.py hello_wsgi')  uWSGI: $(rss 'uwsgi --plugin python3 --socket')"

# 2. Django
cp -r internal/wsgi/testdata/django "$WORK/django"
export GANTRY_TEST_DB="$WORK/django/db.sqlite3"
(cd "$WORK/django" && "$PY" manage.py migrate --noinput >/dev/null)
"$BIN" serve "$WORK/django" --wsgi mysite.wsgi:application --python "$PY" \
  --listen "127.0.0.1:$DJ_PORT" --admin off --access-log off >"$WORK/gantry-django.log" 2>&1 &
pids+=($!)
uwsgi --plugin python3 --socket "$WORK/uwsgi.sock" --chmod-socket=666 --chdir "$WORK/django" \
  --module mysite.wsgi:application --processes 2 --master --die-on-term --disable-logging \
  --env GANTRY_TEST_DB="$GANTRY_TEST_DB" --daemonize "$WORK/uwsgi.log" --pidfile "$WORK/uwsgi.pid"
chmod 755 "$WORK"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/body; uwsgi_temp_path $WORK/uwsgi-tmp;
  proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi; scgi_temp_path $WORK/scgi;
  server {
    listen 127.0.0.1:$DJ_PEER_PORT;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$WORK/uwsgi.sock; }
  }
}
EOF
nginx -c "$WORK/nginx.conf"
wait_for "http://127.0.0.1:$DJ_PORT/hello/" "$WORK/gantry-django.log"
wait_for "http://127.0.0.1:$DJ_PEER_PORT/hello/" "$WORK/uwsgi.log"
EMB_PATH=hello/ embedded "$DJ_EMB_PORT" "$WORK/django" mysite.wsgi:application "env = { GANTRY_TEST_DB = \"$GANTRY_TEST_DB\" }"
echo "== Django page /hello/ (2 processes each; embedded: 1 process, 4 threads)"
"$COMPARE" "$@" \
  nginx-uwsgi-django="http://127.0.0.1:$DJ_PEER_PORT/hello/" \
  gantry-django="http://127.0.0.1:$DJ_PORT/hello/" \
  gantry-django-embedded="http://127.0.0.1:$DJ_EMB_PORT/hello/" || true
echo "RSS per worker (kB): gantry: $(rss 'gantry_wsgi_worker.py mysite')  uWSGI: $(rss 'uwsgi --plugin python3 --socket .*gantry-wsgi-bench')"
echo "RSS with Django loaded (kB): gantry embedded: $(rss "$BIN-python serve -c $WORK/embedded-$DJ_EMB_PORT.toml")  uWSGI master+workers: $(rss 'uwsgi --plugin python3 --socket .*gantry-wsgi-bench' | awk '{s=0; for (i=1;i<=NF;i++) s+=$i; print s}')"
