#!/usr/bin/env bash
# Regenerates cmd/otelcol-audit/components.go from builder-config.yaml with the collector
# builder (generate-only: the distribution is built inside the root module).
# With --check, fails when the committed file differs from what the builder generates.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILDER_VERSION=v0.162.0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sed "s#output_path: .*#output_path: $out/gen#" builder-config.yaml > "$out/builder-config.yaml"
mkdir -p "$out/gen"
go run "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" \
  --config "$out/builder-config.yaml" --skip-compilation --skip-get-modules >"$out/builder.log" 2>&1 \
  || { cat "$out/builder.log"; exit 1; }
gofmt "$out/gen/components.go" > "$out/components.go"
target=cmd/otelcol-audit/components.go
if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$target" "$out/components.go"; then
    echo "$target is stale: run 'make generate' and commit the result." >&2
    exit 1
  fi
  echo "$target matches builder-config.yaml"
else
  cp "$out/components.go" "$target"
  echo "wrote $target"
fi
