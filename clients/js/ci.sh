#!/usr/bin/env bash
# CI for the TypeScript SDK and the browser UI: installs Debian's Chromium
# if missing, builds the SDK, checks that the committed dist/ matches the
# sources, then runs the SDK tests and the browser end-to-end tests against
# the debug `tern` binary (built here if missing). Ends with node's summary.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export TERN_BIN="${TERN_BIN:-$CARGO_TARGET_DIR/debug/tern}"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if [ ! -x "$TERN_BIN" ]; then
  echo "== building the tern binary"
  (cd "$repo" && cargo build -q -p tern-server --locked)
fi

echo "== npm ci"
npm ci --no-audit --no-fund

echo "== npm run build, and dist/ must match the sources"
npm run build
if ! git -C "$repo" diff --exit-code -- clients/js/dist; then
  echo "clients/js/dist differs from a fresh build: run 'npm run build' in clients/js and commit dist/" >&2
  exit 1
fi
untracked="$(git -C "$repo" ls-files --others --exclude-standard -- clients/js/dist)"
if [ -n "$untracked" ]; then
  echo "new files in clients/js/dist are not committed: $untracked" >&2
  exit 1
fi

echo "== npm test (SDK + browser end-to-end, binary $TERN_BIN)"
npm test
