#!/usr/bin/env bash
# Installs what building and testing otelcol-audit need and a fresh Debian machine may
# lack: a C compiler for DuckDB's cgo bindings, and Chromium for the web page's browser
# tests. Go itself must already be on PATH. Nothing is installed when all are present.
set -euo pipefail
command -v go >/dev/null || { echo "Go is required (https://go.dev/dl); it is not on PATH." >&2; exit 1; }
missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v g++ >/dev/null || missing+=(g++)
command -v curl >/dev/null || missing+=(curl)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
