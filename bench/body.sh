#!/usr/bin/env bash
# body.sh: 1 MB POSTs per second to a WSGI app and to a PHP script, gantry vs
# nginx + uWSGI and nginx + php-fpm. All of them read the whole body before the
# application sees it (gantry spools past 64KB to body_temp, nginx past
# client_body_buffer_size to client_body_temp_path), and every backend reads it and
# answers with its sha256. Each side has 2 Python processes (one thread each) and
# shares one php-fpm pool of 2 workers. Access logs off. Ratios only mean something
# within one run.
#
#   bench/body.sh [compare options, e.g. -c 16 -d 5 -r 3]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$PWD/../shared}
COMPARE=${COMPARE:-$SHARED/bench/compare}
APPS=$SHARED/bench/apps
PY=${PY:-/usr/bin/python3}
PHP_FPM=${PHP_FPM:-$(command -v php-fpm php-fpm8.3 php-fpm8.2 2>/dev/null | head -1 || true)}
PORT=${PORT:-18295}
NGX_WSGI=${NGX_WSGI:-18296}
NGX_PHP=${NGX_PHP:-18297}
SIZE=${SIZE:-1048576}
BIN=${BIN:-/tmp/gantry-body-bench}

for tool in nginx uwsgi wrk curl "$PHP_FPM"; do
  [ -n "$tool" ] && command -v "$tool" >/dev/null || { echo "body.sh: ${tool:-php-fpm} not installed (scripts/install-peers.sh)" >&2; exit 1; }
done
go build -o "$BIN" ./cmd/gantry
WORK=$(mktemp -d /tmp/gantry-body-bench.XXXXXX)
chmod 755 "$WORK"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -f "$WORK/uwsgi.pid" ] && kill -INT "$(cat "$WORK/uwsgi.pid")" 2>/dev/null || true
  [ -f "$WORK/fpm.pid" ] && kill "$(cat "$WORK/fpm.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # url log
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "body.sh: $1 did not answer; see $2" >&2; exit 1
}

mkdir -p "$WORK/www"
cat >"$WORK/www/echo.php" <<'PHP'
<?php
$body = file_get_contents('php://input');
header('Content-Type: text/plain');
echo strlen($body), ' ', hash('sha256', $body), "\n";
PHP
chmod -R a+rX "$WORK/www"

cat >"$WORK/fpm.conf" <<FPM
[global]
pid = $WORK/fpm.pid
error_log = $WORK/fpm.log
daemonize = yes
[www]
user = www-data
group = www-data
listen = $WORK/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 2
php_admin_value[post_max_size] = 64M
FPM
"$PHP_FPM" -y "$WORK/fpm.conf"

uwsgi --plugin python3 --socket "$WORK/uwsgi.sock" --chmod-socket=666 --chdir "$APPS" \
  --wsgi-file echo_wsgi.py --processes 2 --master --die-on-term --disable-logging \
  --daemonize "$WORK/uwsgi.log" --pidfile "$WORK/uwsgi.pid"

cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_max_body_size 64m;
  client_body_temp_path $WORK/body; uwsgi_temp_path $WORK/uwsgi-tmp;
  proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi; scgi_temp_path $WORK/scgi;
  server {
    listen 127.0.0.1:$NGX_WSGI;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$WORK/uwsgi.sock; }
  }
  server {
    listen 127.0.0.1:$NGX_PHP;
    root $WORK/www;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$WORK/fpm.sock;
    }
  }
}
NGINX
nginx -c "$WORK/nginx.conf"

cat >"$WORK/gantry.toml" <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
access_log = "off"
body_temp = "$WORK/gantry-body"
[admin]
listen = "off"
[[site]]
root = "$WORK/www"
  [[site.route]]
  path = "*.php"
  fastcgi = "unix:$WORK/fpm.sock"
  max_conns = 2
  [[site.route]]
  path = "/"
  wsgi = "echo_wsgi:application"
  python = "$PY"
  chdir = "$APPS"
  processes = 2
  threads = 1
TOML
"$BIN" serve -c "$WORK/gantry.toml" >"$WORK/gantry.log" 2>&1 &
pids+=($!)

wait_for "http://127.0.0.1:$PORT/" "$WORK/gantry.log"
wait_for "http://127.0.0.1:$NGX_WSGI/" "$WORK/uwsgi.log"
wait_for "http://127.0.0.1:$NGX_PHP/echo.php" "$WORK/nginx-error.log"
# Every backend must have read the whole body.
head -c "$SIZE" /dev/zero | tr '\0' x >"$WORK/body.bin"
want="$SIZE $(sha256sum <"$WORK/body.bin" | cut -d' ' -f1)"
for url in "http://127.0.0.1:$PORT/" "http://127.0.0.1:$PORT/echo.php" "http://127.0.0.1:$NGX_WSGI/" "http://127.0.0.1:$NGX_PHP/echo.php"; do
  got=$(curl -sf --data-binary @"$WORK/body.bin" -H 'Content-Type: application/octet-stream' "$url" || true)
  [ "$got" = "$want" ] || { echo "body.sh: $url answered \"$got\", want \"$want\"" >&2; exit 1; }
done

echo "== $SIZE-byte POST to a WSGI app (2 processes each)"
"$COMPARE" --post "$SIZE" "$@" \
  nginx-uwsgi="http://127.0.0.1:$NGX_WSGI/" \
  gantry-wsgi="http://127.0.0.1:$PORT/" || true
echo "== $SIZE-byte POST to PHP (one php-fpm pool, 2 workers)"
"$COMPARE" --post "$SIZE" "$@" \
  nginx-php-fpm="http://127.0.0.1:$NGX_PHP/echo.php" \
  gantry-php="http://127.0.0.1:$PORT/echo.php" || true
