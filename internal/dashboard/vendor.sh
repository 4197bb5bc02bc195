#!/bin/sh
# Refreshes assets/vendor from npm at the version pinned in package.json and
# package-lock.json (run it after changing the pin, then commit assets/vendor).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp package.json package-lock.json "$tmp"/
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
cp "$tmp"/node_modules/uplot/dist/uPlot.iife.min.js "$tmp"/node_modules/uplot/dist/uPlot.min.css assets/vendor/
cp "$tmp"/node_modules/uplot/LICENSE assets/vendor/uPlot.LICENSE
