#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR SECONDS: runs a libFuzzer binary for SECONDS
# on a scratch copy of the seed corpus (the repo's seeds stay as they are),
# keeping any crash input in $SAEDICT_FUZZ_ARTIFACTS (default: ./fuzz-artifacts).
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work/"
artifacts=${SAEDICT_FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$(basename "$fuzzer")-" "$work"
