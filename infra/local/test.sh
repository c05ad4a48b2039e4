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

TEMPLATE_DB=consul_cloud_test_template
export TEST_ADMIN_DATABASE_URL="$DATABASE_URL"
export TEST_TEMPLATE_DATABASE="$TEMPLATE_DB"
if ! psql "$DATABASE_URL" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$TEMPLATE_DB'" | grep -q 1; then
  psql "$DATABASE_URL" -qc "CREATE DATABASE $TEMPLATE_DB" >/dev/null
fi
migrate_db "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$TEMPLATE_DB"

# A development issuer of the test run's own, on its own port (npm start's may be running).
export ISSUER_PORT="${TEST_ISSUER_PORT:-18443}"
export ISSUER_URL="https://127.0.0.1:$ISSUER_PORT"
export AUTH_ISSUER="$ISSUER_URL" AUTH_METADATA_URL="$ISSUER_URL/.well-known/openid-configuration"
export NODE_ENV=test LOG_FORMAT=json
PID_NAME=test-issuer node "$ROOT/dist/infra/local/issuer.js" >"$LOCAL/logs/test-issuer.log" 2>&1 &
issuer_pid=$!
trap 'kill $issuer_pid 2>/dev/null || true' EXIT
wait_for -t 20 curl -fsS --cacert "$NODE_EXTRA_CA_CERTS" -o /dev/null "$AUTH_METADATA_URL" ||
  die "the test identity issuer did not start; see $LOCAL/logs/test-issuer.log"

# Arguments narrow the run to some compiled test files (e.g. dist/test/api.test.js).
if (($# > 0)); then files=("$@"); else
  mapfile -t files < <(cd "$ROOT" && find dist -name '*.test.js' -not -path '*/node_modules/*' | sort)
fi
((${#files[@]} > 0)) || die "no test files found under dist/"
cd "$ROOT"
# --test-force-exit: a file whose tests all ended is not held open by a stray handle.
node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=300000 --test-force-exit "${files[@]}"
