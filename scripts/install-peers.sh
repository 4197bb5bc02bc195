#!/usr/bin/env bash
# Installs, from Debian's packages, every real peer the tests talk to. Run as root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "install-peers: run as root (apt-get needs it)" >&2; exit 1; fi
# keep Debian's service scripts from starting system-wide daemons on install
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
# libpython3-dev and pkg-config: the python build (go build -tags python) links the
# libpython of the system's python3 (pkg-config python3-embed).
pkgs=(pebble python3 python3-django python3-flask libpython3-dev pkg-config php-fpm php-cgi php-gd perl gcc chromium nginx
      nmap tcpdump time hping3 masscan zmap iproute2 curl wrk wget openssl openssh-client
      systemd lintian clickhouse-server clickhouse-client nftables)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A user with a supplementary group, for the tests that drop privileges to one and
# check its groups (peertest.GroupMember).
id gantry-peer >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin --groups users gantry-peer
# A second one, for the tests that run two apps as two users and check that
# neither can reach the other's sockets, bodies or processes.
id gantry-peer2 >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin gantry-peer2
# h2spec (HTTP/2 conformance, TestH2spec) is not in Debian: built from its tagged
# release into a directory on every PATH, which this script chooses, not the
# caller's GOBIN.
if ! command -v h2spec >/dev/null; then
  command -v go >/dev/null || { echo "install-peers: h2spec needs the Go toolchain on PATH" >&2; exit 1; }
  GOBIN=/usr/local/bin go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi
