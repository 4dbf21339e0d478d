#!/usr/bin/env bash
# The long form of test/torture.test.ts: more processes, more rounds of random
# verbs with random kill -9 on one data root (root needed; overlay2).
#   scripts/torture.sh [WORKERS] [ROUNDS]     default 6 workers x 300 rounds
# Repeat it with a loop for a night run: for i in $(seq 10); do scripts/torture.sh || break; done
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p .
node scripts/bundle-cli.mjs
STRATA_TORTURE_WORKERS="${1:-6}" STRATA_TORTURE_ROUNDS="${2:-300}" node --test --test-concurrency=1 dist/test/torture.test.js
