#!/usr/bin/env bash
# npm test: the same set-up as npm start, then the whole suite (node's test
# runner, test files in parallel). Each test file gets its own database cloned
# from a migrated template, its own queue prefix and its own loopback block.
set -Eeuo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
# shellcheck source=infra/local/lib.sh
source "$here/lib.sh"
# shellcheck source=infra/local/app.sh
source "$here/app.sh"
# shellcheck disable=SC1091
source "$LOCAL/env"
# The console's browser tests drive Debian's Chromium (playwright-core, no downloaded browser).
ensure_apt chromium
# The local ARM validates each scale set's user data with Debian's cloud-init (`cloud-init schema`)
# and runs its boot script, as cloud-init would, in a mount namespace per instance (util-linux unshare, nsenter).
ensure_apt cloud-init util-linux

prepare_template_db
export NODE_ENV=test LOG_FORMAT=json
DEV_ISSUER_PID=""
trap '[[ -z "$DEV_ISSUER_PID" ]] || kill "$DEV_ISSUER_PID" 2>/dev/null || true' EXIT
start_dev_issuer "${TEST_ISSUER_PORT:-18443}" test-issuer

# Arguments narrow the run to some compiled test files (e.g. dist/test/api.test.js).
if (($# > 0)); then files=("$@"); else
  mapfile -t files < <(cd "$ROOT" && find dist -name '*.test.js' -not -path '*/node_modules/*' | sort)
fi
((${#files[@]} > 0)) || die "no test files found under dist/"
cd "$ROOT"
# --test-force-exit: a file whose tests all ended is not held open by a stray handle.
# --test-timeout bounds a file that hangs: the longest file (the Azure target's e2e, real
# instances booting in the local cloud) takes about 220 s alone on two cores and more beside
# another heavy file, so the bound is 480 s.
node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=480000 --test-force-exit "${files[@]}"
