#!/bin/sh
# tests/browser/setup.sh — installs the browser tests' node packages
# (playwright-core, pinned by package-lock.json) with `npm ci`, only when
# node_modules is missing or older than the lock file. Idempotent; called by
# deploy/dev.sh. Needs npm and the npm registry only when it installs.
set -eu
cd "$(dirname "$0")"
if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/browser/setup.sh: npm not found; the browser test will be skipped (apt-get install npm)" >&2
  exit 0
fi
npm ci --no-audit --no-fund
touch node_modules/.package-lock.json
