#!/usr/bin/env bash
# Soak test: gantry under every kind of traffic and a fault every few seconds for
# DURATION (default 1h), then one markdown table of what happened. Exit 1 if a
# defect, a checksum mismatch, a leak or a left-over was found.
# Usage: bench/soak.sh [-d DURATION] [-o REPORT.md] [-keep]
# Needs php-cgi and python3 (scripts/install-peers.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/gantry" ./cmd/gantry
go build -o "$work/soak" ./bench/soak
"$work/soak" -gantry "$work/gantry" "$@"
