#!/usr/bin/env bash
# Builds dist/gantry_<version>_<arch>.deb with nfpm (a tool pinned in go.mod: only
# the module proxy is reached). The version comes from the binary's build info,
# the same string `gantry version -short` prints: a tag, or a pseudo-version of
# the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

arch=$(go env GOARCH)
rm -rf dist/build && mkdir -p dist/build
# -buildvcs=auto: stamp the commit when this is a git checkout (GOFLAGS may say false)
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags='-s -w' -o dist/build/gantry ./cmd/gantry
v=$(dist/build/gantry version -short)
case "$v" in
  devel*) echo "package.sh: no version in the build info ($v): build from a git checkout; packaging as 0.0.0~devel" >&2
          debv="0.0.0~devel" ;;
  # v1.2.3 -> 1.2.3; v1.2.4-rc.1 / pseudo-versions -> 1.2.4~rc.1 (sorts before 1.2.4)
  *) debv=$(printf '%s' "${v#v}" | tr '-' '~') ;;
esac
rev=$(dist/build/gantry version | sed -n 's/^commit \([0-9a-f]*\).*/\1/p')
{
  printf 'gantry (%s) unstable; urgency=medium\n\n' "$debv"
  printf '  * Built from %s.\n\n' "${rev:-an unknown commit}"
  printf ' -- gantry maintainers <gantry-maintainers@users.noreply.github.com>  %s\n' "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >dist/build/changelog.gz

out="dist/gantry_${debv}_${arch}.deb"
rm -f "$out"
GANTRY_VERSION="$debv" GANTRY_ARCH="$arch" go tool nfpm package --config packaging/nfpm.yaml --packager deb --target "$out" >&2
echo "$out"
