#!/usr/bin/env bash
# php-front.sh: a PHP front controller that does 20 ms of work per request, through
# gantry's default PHP site (index.php as front controller) and through nginx with
# `try_files $uri $uri/ /index.php?$args`, both on one php-fpm pool (pm static, 2
# children). Pretty URLs, so every request takes the try_files path.
#
#   bench/php-front.sh [compare options; default -c 8 -d 5 -r 3]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$PWD/../shared}
COMPARE=${COMPARE:-$SHARED/bench/compare}
DIR=${DIR:-/tmp/gantry-php-front}
BIN=$DIR/gantry
GPORT=${GPORT:-18498} NPORT=${NPORT:-18497}
FPM=$(ls /usr/sbin/php-fpm* | head -1)

rm -rf "$DIR"; mkdir -p "$DIR/www" "$DIR/nginx"
go build -o "$BIN" ./cmd/gantry
cat >"$DIR/www/index.php" <<'PHP'
<?php
// 20 ms of PHP work, then a page that names the route it was asked for.
$until = hrtime(true) + 20e6;
$h = '';
while (hrtime(true) < $until) { $h = hash('sha256', $h . $_SERVER['REQUEST_URI']); }
echo "<p>", htmlspecialchars(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)), " ", substr($h, 0, 8), "</p>\n";
PHP
cat >"$DIR/fpm.conf" <<CONF
[global]
error_log = $DIR/fpm.log
daemonize = no
pid = $DIR/fpm.pid
[www]
listen = $DIR/fpm.sock
pm = static
pm.max_children = 2
CONF
cat >"$DIR/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $DIR/nginx/error.log;
pid $DIR/nginx/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/body; fastcgi_temp_path $DIR/nginx/fcgi;
  proxy_temp_path $DIR/nginx/proxy; uwsgi_temp_path $DIR/nginx/uwsgi; scgi_temp_path $DIR/nginx/scgi;
  include /etc/nginx/mime.types;
  server {
    listen 127.0.0.1:$NPORT;
    root $DIR/www;
    index index.html index.php;
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ [^/]\.php(/|\$) {
      fastcgi_split_path_info ^(.+?\.php)(/.*)\$;
      try_files \$fastcgi_script_name =404;
      set \$path_info \$fastcgi_path_info;
      fastcgi_param PATH_INFO \$path_info;
      fastcgi_index index.php;
      include /etc/nginx/fastcgi.conf;
      fastcgi_pass unix:$DIR/fpm.sock;
    }
  }
}
CONF
ROOTFLAG=(); [ "$(id -u)" = 0 ] && ROOTFLAG=(-R)
"$FPM" -F -y "$DIR/fpm.conf" "${ROOTFLAG[@]}" & FPMPID=$!
nginx -c "$DIR/nginx.conf" -p "$DIR/nginx" & NGXPID=$!
"$BIN" serve "$DIR/www" --listen "127.0.0.1:$GPORT" --admin off --access-log off --php "unix:$DIR/fpm.sock" >"$DIR/gantry.log" 2>&1 & GPID=$!
trap 'kill $GPID $NGXPID $FPMPID 2>/dev/null; wait 2>/dev/null' EXIT
for port in $GPORT $NPORT; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/blog/post-1?page=2" && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/blog/post-1?page=2" | grep -q '/blog/post-1' || { echo "php-front.sh: port $port did not answer" >&2; exit 1; }
done
[ $# -gt 0 ] || set -- -c 8 -d 5 -r 3
"$COMPARE" "$@" \
  gantry="http://127.0.0.1:$GPORT/blog/post-1?page=2" \
  nginx-php-fpm="http://127.0.0.1:$NPORT/blog/post-1?page=2"
