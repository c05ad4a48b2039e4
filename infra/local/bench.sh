#!/usr/bin/env bash
# npm run bench: the same set-up as npm test (local stack, build, migrated
# template database, an identity issuer of its own), then the compiled
# benchmarks in order, then a summary. Results: bench/results/<name>.json.
#
#   npm run bench                          # all benchmarks
#   npm run bench -- cluster-create        # some of them, by name
#
# Each benchmark clones its own database from the template, uses its own queue
# prefix and loopback block (LOCAL_NET_OCTET 250-254), stops its child
# processes and deletes its clusters, and is stopped after BENCH_TIME_LIMIT
# seconds (default 300) at the latest.
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

BENCH_RUN_DIR="$LOCAL/bench/run"
mkdir -p "$BENCH_RUN_DIR" "$LOCAL/logs" "$ROOT/bench/results"

# Stops what a benchmark left behind (it normally stops its children itself),
# by the pids it recorded, never by name.
stop_leftovers() {
  local f pid
  for f in "$BENCH_RUN_DIR"/*.pid; do
    [[ -e "$f" ]] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      warn "stopping leftover $(basename "$f" .pid) (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      sleep 2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

# A development issuer of the benchmarks' own, on its own port.
export ISSUER_PORT="${BENCH_ISSUER_PORT:-18444}"
export ISSUER_URL="https://127.0.0.1:$ISSUER_PORT"
export AUTH_ISSUER="$ISSUER_URL" AUTH_METADATA_URL="$ISSUER_URL/.well-known/openid-configuration"
export NODE_ENV=test LOG_FORMAT=json
issuer_pid=""
cleanup() {
  [[ -z "$issuer_pid" ]] || kill "$issuer_pid" 2>/dev/null || true
  stop_leftovers
}
trap cleanup EXIT
PID_NAME=bench-issuer node "$ROOT/dist/infra/local/issuer.js" >"$LOCAL/logs/bench-issuer.log" 2>&1 &
issuer_pid=$!
wait_for -t 20 curl -fsS --cacert "$NODE_EXTRA_CA_CERTS" -o /dev/null "$AUTH_METADATA_URL" ||
  die "the benchmark identity issuer did not start; see $LOCAL/logs/bench-issuer.log"

ALL=(cluster-create api-throughput)
if (($# > 0)); then names=("$@"); else names=("${ALL[@]}"); fi
limit="${BENCH_TIME_LIMIT:-300}"
failed=()
cd "$ROOT"
for name in "${names[@]}"; do
  js="dist/bench/$name.bench.js"
  [[ -f "$js" ]] || die "no compiled benchmark $js (known: ${ALL[*]})"
  log "benchmark $name"
  rm -f "bench/results/$name.json"
  # SIGTERM lets the benchmark clean up (its own limit is shorter); SIGKILL 60 s later.
  if ! timeout -k 60 "$limit" node "$js"; then
    warn "benchmark $name failed"
    failed+=("$name")
  fi
  stop_leftovers
done

# The summary, from the result files.
node - "${names[@]}" <<'EOF'
const fs = require('node:fs');
const lines = ['', '==== benchmark summary ===='];
for (const name of process.argv.slice(2)) {
  const file = `bench/results/${name}.json`;
  if (!fs.existsSync(file)) { lines.push(`${name}: no result`); continue; }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const s of r.summary ?? []) lines.push(`${name}: ${s}`);
}
lines.push(`(node ${process.version}; details in bench/results/*.json)`);
console.log(lines.join('\n'));
EOF

((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
