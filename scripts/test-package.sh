#!/usr/bin/env bash
# Builds the Debian package and tests it on this machine, as root: lintian,
# dpkg -i, `gantry check` of the shipped config, systemd-analyze verify and
# security (exposure <= 3.0), the unit's ExecStart run as the gantry user under
# systemd-socket-activate with a notify socket of our own, then dpkg --purge,
# checking the machine is left as it was. systemd is not PID 1 here (a container):
# the units themselves cannot be started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
if [ "$(id -u)" != 0 ]; then echo "test-package: run as root (dpkg -i needs it)" >&2; exit 1; fi
if dpkg-query -W -f='${Status}' gantry 2>/dev/null | grep -q 'installed'; then
  echo "test-package: a gantry package is installed already; remove it first (this test purges what it installs)" >&2; exit 1
fi
pass=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
fail() { echo "FAIL: $*" >&2; exit 1; }

deb=$(bash scripts/package.sh)
echo "== $deb"
lintian --fail-on error,warning "$deb" >"${TMPDIR:-/tmp}/gantry-lintian.log" 2>&1 || { grep -v "root privileges" "${TMPDIR:-/tmp}/gantry-lintian.log" >&2; fail "lintian"; }
ok "lintian clean (overrides in packaging/lintian-overrides)"

work=$(mktemp -d)
act_pid=""
cleanup() {
  [ -n "$act_pid" ] && kill "$act_pid" 2>/dev/null || true
  [ -n "${notify_pid:-}" ] && kill "$notify_pid" 2>/dev/null || true
  rm -f /var/www/html/gantry-test.html
  dpkg --purge gantry >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

before_users=$(getent passwd | cut -d: -f1 | sort | md5sum)
had_www=$([ -e /var/www/html ] && echo yes || echo no)
dpkg -i "$deb" >/dev/null || fail "dpkg -i"
getent passwd gantry >/dev/null || fail "no gantry user after install"
[ "$(stat -c %U /var/lib/gantry)" = gantry ] || fail "/var/lib/gantry not owned by gantry"
dpkg-query -W -f='${Conffiles}\n' gantry | grep -q '/etc/gantry/gantry.toml' || fail "gantry.toml is not a conffile"
want=$(/usr/bin/gantry version -short | sed 's/^v//; s/^devel.*/0.0.0~devel/' | tr '-' '~')
[ "$(dpkg-query -W -f='${Version}' gantry)" = "$want" ] || fail "package version $(dpkg-query -W -f='${Version}' gantry) is not the binary's $want"
[ "$(stat -c '%U %a' /var/lib/gantry/tls)" = "gantry 700" ] || fail "/var/lib/gantry/tls: $(stat -c '%U %a' /var/lib/gantry/tls), want gantry 700"
ok "installed: user, state directory, TLS storage, conffile, version $want"

/usr/bin/gantry check -c /etc/gantry/gantry.toml || fail "gantry check of the shipped config"
ok "gantry check -c /etc/gantry/gantry.toml"

systemd-analyze verify /lib/systemd/system/gantry.socket /lib/systemd/system/gantry-https.socket /lib/systemd/system/gantry.service || fail "systemd-analyze verify"
ok "systemd-analyze verify"
# HTTPS sockets: off until the admin sets tls_listen (gantry refuses a socket no
# address wants), and the UDP socket for HTTP/3 on the TLS port
[ ! -e /etc/systemd/system/sockets.target.wants/gantry-https.socket ] || fail "gantry-https.socket enabled by the package"
https_unit=/lib/systemd/system/gantry-https.socket
[ "$(sed -n 's/^ListenStream=//p' $https_unit)" = "$(sed -n 's/^ListenDatagram=//p' $https_unit)" ] || fail "gantry-https.socket: HTTP/3's datagram port is not the TLS port"
ok "gantry-https.socket: not enabled, TCP and UDP on one port"
score=$(systemd-analyze security --offline=yes /lib/systemd/system/gantry.service 2>&1 | sed -n 's/.*Overall exposure level for gantry.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure score from systemd-analyze security"
awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' || fail "exposure $score > 3.0"
ok "systemd-analyze security: exposure $score (<= 3.0)"

# The unit's ExecStart, as systemd would run it: as gantry (User=), with the
# socket of gantry.socket (port 80, named listen) and a notify socket.
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/gantry.service)
port=$(sed -n 's/^ListenStream=//p' /lib/systemd/system/gantry.socket)
fdname=$(sed -n 's/^FileDescriptorName=//p' /lib/systemd/system/gantry.socket)
chmod 0755 "$work"
python3 - "$work/notify" >"$work/notify.log" <<'PY' &
import os, socket, sys
os.umask(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\n", " "), flush=True)
PY
notify_pid=$!
for _ in $(seq 100); do [ -S "$work/notify" ] && break; sleep 0.1; done
echo "<p>served by gantry</p>" >/var/www/html/gantry-test.html
# shellcheck disable=SC2086 # ExecStart is a command line, split as systemd does
systemd-socket-activate -l "$port" --fdname="$fdname" -E NOTIFY_SOCKET="$work/notify" \
  setpriv --reuid=gantry --regid=gantry --init-groups --inh-caps=-all $exec_start >"$work/access.log" 2>"$work/gantry.log" &
act_pid=$!
# systemd-socket-activate binds the port in the background: curl must not race it.
for _ in $(seq 100); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.1; done
# systemd-socket-activate starts gantry on the first connection; curl waits in the
# socket's queue until gantry accepts.
body=$(curl -sS --max-time 20 "http://127.0.0.1:$port/gantry-test.html") || { cat "$work/gantry.log" >&2; fail "no answer through the activated socket"; }
[ "$body" = "<p>served by gantry</p>" ] || fail "body $body"
grep -q 'READY=1' "$work/notify.log" || fail "no READY=1 on the notify socket: $(cat "$work/notify.log")"
grep -q 'socket_activated=true' "$work/gantry.log" || fail "gantry did not serve the passed socket: $(cat "$work/gantry.log")"
[ "$(ps -o user= -p "$act_pid")" = gantry ] || fail "gantry runs as $(ps -o user= -p "$act_pid")"
ok "ExecStart under systemd-socket-activate as gantry: served port $port, READY=1"
kill -TERM "$act_pid"
wait "$act_pid" || fail "gantry's exit status after SIGTERM: $?"
act_pid=""
grep -q 'STOPPING=1' "$work/notify.log" || fail "no STOPPING=1"
ok "SIGTERM: STOPPING=1 and a clean exit"

# HTTPS as the unit runs gantry, with HTTPS enabled as the README says: as
# gantry, with the shipped [tls] storage (certificates are made after root is
# gone, so the package's storage must be gantry's), on the sockets of gantry.socket
# and gantry-https.socket, named as they name them. systemd-socket-activate passes
# stream sockets only: gantry binds HTTP/3's UDP port itself here (the Go test
# TestSocketActivationHTTPS passes it a datagram socket).
read -r http_port tls_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
tls_fdname=$(sed -n 's/^FileDescriptorName=//p' $https_unit)
sed -e "s|^listen = \\[.*|listen = [\"127.0.0.1:$http_port\"]|" -e "s|^# tls_listen = .*|tls_listen = [\"127.0.0.1:$tls_port\"]|" \
  -e 's|^# hosts = .*|hosts = ["localhost"]|' -e 's|^listen = "127.0.0.1:2020"|listen = "off"|' \
  /etc/gantry/gantry.toml >"$work/tls.toml"
grep -q "^tls_listen = " "$work/tls.toml" && grep -q '^hosts = \["localhost"\]' "$work/tls.toml" || fail "the shipped config has no commented tls_listen and hosts lines to enable: $(cat "$work/tls.toml")"
chmod 0644 "$work/tls.toml"
/usr/bin/gantry check -c "$work/tls.toml" >/dev/null || fail "gantry check of the shipped config with HTTPS enabled"
# shellcheck disable=SC2086 # ExecStart is a command line, split as systemd does
systemd-socket-activate -l "127.0.0.1:$http_port" -l "127.0.0.1:$tls_port" --fdname="$fdname:$tls_fdname" \
  setpriv --reuid=gantry --regid=gantry --init-groups --inh-caps=-all ${exec_start/\/etc\/gantry\/gantry.toml/$work/tls.toml} >/dev/null 2>"$work/gantry-tls.log" &
act_pid=$!
for _ in $(seq 100); do ss -ltnH "sport = :$tls_port" | grep -q . && break; sleep 0.1; done
# The first connection starts gantry; plain HTTP to a site with a certificate
# redirects to https once the certificate is in hand.
curl -sS --max-time 20 -o /dev/null "http://127.0.0.1:$http_port/gantry-test.html" || { cat "$work/gantry-tls.log" >&2; fail "no answer on the HTTP socket"; }
for _ in $(seq 100); do [ -e /var/lib/gantry/tls/ca/root.pem ] && break; sleep 0.1; done
[ -e /var/lib/gantry/tls/ca/root.pem ] || { cat "$work/gantry-tls.log" >&2; fail "no internal root in /var/lib/gantry/tls"; }
for _ in $(seq 100); do
  body=$(curl -sS --max-time 5 --cacert /var/lib/gantry/tls/ca/root.pem "https://localhost:$tls_port/gantry-test.html" 2>/dev/null) && break
  sleep 0.1
done
[ "$body" = "<p>served by gantry</p>" ] || { cat "$work/gantry-tls.log" >&2; fail "HTTPS body $body"; }
loc=$(curl -sS --max-time 5 -o /dev/null -w '%{redirect_url}' "http://localhost:$http_port/gantry-test.html")
[ "$loc" = "https://localhost:$tls_port/gantry-test.html" ] || fail "plain HTTP redirects to '$loc', want the HTTPS socket's port"
grep -q 'socket_activated=true' "$work/gantry-tls.log" || fail "gantry did not serve the passed sockets: $(cat "$work/gantry-tls.log")"
ss -lunpH "sport = :$tls_port" | grep -q "pid=$act_pid," || fail "no HTTP/3 UDP socket on port $tls_port: $(ss -lunpH)"
[ "$(stat -c %U /var/lib/gantry/tls/ca/root.key)" = gantry ] || fail "root.key not gantry's"
[ "$(ps -o user= -p "$act_pid")" = gantry ] || fail "gantry runs as $(ps -o user= -p "$act_pid")"
kill -TERM "$act_pid"
wait "$act_pid" || fail "gantry's exit status after SIGTERM: $?"
act_pid=""
ok "HTTPS through systemd-socket-activate as gantry (sockets named $fdname and $tls_fdname): internal root in /var/lib/gantry/tls, served port $tls_port, redirect from $http_port, HTTP/3 on UDP $tls_port"
rm -f /var/www/html/gantry-test.html

dpkg --purge gantry >/dev/null || fail "dpkg --purge"
for f in /usr/bin/gantry /etc/gantry /var/lib/gantry /var/log/gantry /lib/systemd/system/gantry.service /lib/systemd/system/gantry-https.socket /etc/logrotate.d/gantry; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
if ls /etc/systemd/system/*/gantry.* >/dev/null 2>&1; then fail "unit links left after purge"; fi
[ "$(getent passwd | cut -d: -f1 | sort | md5sum)" = "$before_users" ] || fail "accounts differ after purge"
[ "$([ -e /var/www/html ] && echo yes || echo no)" = "$had_www" ] || fail "/var/www/html: there before: $had_www, not after purge"
ok "purged: no file, link or account left"
echo "test-package: $pass passed, 0 failed"
