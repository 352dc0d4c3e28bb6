#!/bin/sh
# tests/browser/run.sh — CTest's entry to the browser test: skips visibly
# (a line starting "SKIPPED:", exit 77 = SKIP_RETURN_CODE) when node, the
# chromium binary or node_modules (tests/browser/setup.sh) is missing, else
# runs `node --test dashboard.test.mjs`. Env: SAEDICT_SERVER (saedictd),
# SAEDICT_DATA_DIR (the shared data folder), SAEDICT_TEST_OUTPUT_DIR
# (screenshots), SAEDICT_CHROMIUM (default /usr/bin/chromium).
cd "$(dirname "$0")" || exit 1
chromium="${SAEDICT_CHROMIUM:-/usr/bin/chromium}"
if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: node not found (apt-get install nodejs npm)"; exit 77
fi
if [ ! -x "$chromium" ]; then
  echo "SKIPPED: $chromium not found (apt-get install chromium)"; exit 77
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "SKIPPED: tests/browser/node_modules absent (run tests/browser/setup.sh)"; exit 77
fi
data="${SAEDICT_DATA_DIR:-../../../shared/data}"
if [ ! -f "$data/stories260k/docs.jsonl" ]; then
  echo "SKIPPED: $data/stories260k absent; the page checks run on saedictd's --demo dictionary instead"
fi
exec node --test dashboard.test.mjs
