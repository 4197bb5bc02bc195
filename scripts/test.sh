#!/usr/bin/env bash
# Runs every check CI runs: installs the real peers the tests talk to (Debian
# packages; needs root), then gofmt, go vet, the race detector on the packages with
# concurrency, and the whole test suite with GANTRY_REQUIRE_PEERS=1 so that no
# integration test can skip silently; then both builds of gantry: the default one,
# pure Go (CGO_ENABLED=0), and the python one (-tags python, cgo and libpython),
# whose tests run the WSGI tests against embedded mode too.
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
go vet -tags python ./...
echo "== go test -race (packages with concurrency)"
race_pkgs=()
for p in server http1 static proxy cgi fastcgi supervise wsgi dashboard accesslog h3 certs ban compress basicauth ratelimit headers errpage; do
  [ -d "internal/$p" ] && race_pkgs+=("./internal/$p/...")
done
go test -race -count=1 "${race_pkgs[@]}"
echo "== go test"
go test -count=1 -timeout 15m ./...
echo "== the default build is pure Go"
CGO_ENABLED=0 go build -o /dev/null ./cmd/gantry
echo "== the python build: embedded WSGI (go test -tags python)"
go build -tags python -o /dev/null ./cmd/gantry
py_pkgs=(./internal/wsgi/... ./internal/cli/ ./internal/dashboard/ ./internal/server/)
go test -race -count=1 -tags python ./internal/wsgi/...
go test -count=1 -timeout 15m -tags python "${py_pkgs[@]}"
echo "== Debian package (build, lintian, install, systemd-analyze, socket activation, purge)"
if [ "$(id -u)" = 0 ]; then
  bash scripts/test-package.sh
else
  echo "test.sh: not root: skipping scripts/test-package.sh (dpkg -i needs root)" >&2
fi
