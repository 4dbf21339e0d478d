#!/usr/bin/env bash
# The full devicemapper suite in the test VM (`npm run test:vm`): every
# driver conformance case, every bad-input case, strata info and check
# through the CLI, in one VM boot. `npm test` runs a focused subset
# of it (test/graphdriver-devicemapper.test.ts says which) to stay within
# the guide's 10 minutes per VM suite even on a loaded machine (measured:
# 2 min 45 s at load 10 on 2 cores); this one took 7 min at the same load.
#
#   scripts/vm/suite.sh [node --test options...]
#
# Needs root and what scripts/install-deps.sh installs (qemu, Debian's
# kernel, dmsetup). Exits with the test run's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
npx tsc -p .
node scripts/bundle-cli.mjs
STRATA_DM_SUITE=full exec node --test --test-concurrency=1 "$@" dist/test/graphdriver-devicemapper.test.js
