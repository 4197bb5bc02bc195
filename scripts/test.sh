#!/usr/bin/env bash
# Runs every check CI runs: installs the real peers the tests talk to (Debian
# packages; needs root), then gofmt, go vet, the race detector on the packages with
# concurrency, and the whole test suite with GANTRY_REQUIRE_PEERS=1 so that no
# integration test can skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [ "$(id -u)" = 0 ]; then
  bash scripts/install-peers.sh
else
  echo "test.sh: not root: skipping the peer install (tests fail if a peer is missing)" >&2
fi
export GANTRY_REQUIRE_PEERS="${GANTRY_REQUIRE_PEERS:-1}"

echo "== gofmt"
unformatted=$(gofmt -l cmd internal examples)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go mod tidy"
go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
echo "== go vet"
go vet ./...
echo "== go test -race (packages with concurrency)"
race_pkgs=()
for p in server http1 static proxy cgi fastcgi supervise wsgi dashboard accesslog h3 certs ban compress basicauth ratelimit headers errpage; do
  [ -d "internal/$p" ] && race_pkgs+=("./internal/$p/...")
done
go test -race -count=1 "${race_pkgs[@]}"
echo "== go test"
go test -count=1 -timeout 15m ./...
echo "== Debian package (build, lintian, install, systemd-analyze, socket activation, purge)"
if [ "$(id -u)" = 0 ]; then
  bash scripts/test-package.sh
else
  echo "test.sh: not root: skipping scripts/test-package.sh (dpkg -i needs root)" >&2
fi
