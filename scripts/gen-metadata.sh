#!/usr/bin/env bash
# Regenerates each component's metadata code with the collector's mdatagen: its
# internal/metadata package (type, scope name, stability) and its generated tests
# (factory type, config struct, lifecycle, goroutine leaks), from its metadata.yaml.
# With --check, fails when a committed file differs from what mdatagen generates.
#
# mdatagen is built from its module: v0.159.0 is the newest release whose module and
# dependencies the module proxy serves (v0.160.0 is not served, v0.161.0 needs a
# dependency the proxy refuses). Its go.mod points its sibling modules to a source tree
# (replace ../../...), which a module download does not have: those lines are dropped
# and the released versions used.
set -euo pipefail
cd "$(dirname "$0")/.."
MDATAGEN_VERSION=v0.159.0
COMPONENTS="processor/auditprocessor receiver/auditeventreceiver exporter/auditparquetexporter
exporter/auditwebhookexporter extension/audittrailextension extension/auditqueryextension"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin="$PWD/bin/mdatagen-$MDATAGEN_VERSION"
if [ ! -x "$bin" ]; then
  src=$(GOFLAGS=-mod=mod go mod download -json "go.opentelemetry.io/collector/cmd/mdatagen@$MDATAGEN_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp -r "$src" "$tmp/mdatagen"
  chmod -R u+w "$tmp/mdatagen"
  sed -i '/^replace /d; /^replace (/,/^)/d' "$tmp/mdatagen/go.mod"
  mkdir -p bin
  (cd "$tmp/mdatagen" && GOFLAGS=-mod=mod go build -o "$bin" .)
fi

stale=0
for c in $COMPONENTS; do
  if [ "${1:-}" != "--check" ]; then
    (cd "$c" && "$bin" metadata.yaml)
    echo "generated $c"
    continue
  fi
  # mdatagen names the import path from the go.mod above the component: generate in a
  # copy of the component under the module's go.mod, and compare.
  gen="$tmp/tree/$c"
  mkdir -p "$gen"
  cp go.mod go.sum "$tmp/tree/"
  cp "$c/metadata.yaml" "$gen/"
  echo "package $(basename "$c")" > "$gen/doc.go" # mdatagen asks go list for the package
  (cd "$gen" && "$bin" metadata.yaml)
  for f in $(cd "$gen" && find . -type f ! -name metadata.yaml ! -name doc.go); do
    if ! diff -q "$gen/$f" "$c/$f" >/dev/null 2>&1; then
      echo "$c/${f#./} is stale: run 'make generate' and commit the result." >&2
      stale=1
    fi
  done
done
if [ "${1:-}" = "--check" ] && [ "$stale" = 0 ]; then
  echo "component metadata matches metadata.yaml"
fi
exit "$stale"
