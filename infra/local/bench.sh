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

prepare_template_db

# A pid folder per run: a run stops only its own leftovers, never another run's children.
export BENCH_RUN_DIR="$LOCAL/bench/run/$$"
mkdir -p "$BENCH_RUN_DIR" "$LOCAL/logs" "$ROOT/bench/results"

# Stops what a benchmark left behind (it normally stops its children itself),
# by the pids it recorded, never by name (SIGTERM, SIGKILL after 2 s).
stop_leftovers() {
  local files=("$BENCH_RUN_DIR"/*.pid)
  [[ -e "${files[0]}" ]] || return 0
  processes stop --grace 2 "${files[@]}" >/dev/null
}

export NODE_ENV=test LOG_FORMAT=json
DEV_ISSUER_PID=""
cleanup() {
  [[ -z "$DEV_ISSUER_PID" ]] || kill "$DEV_ISSUER_PID" 2>/dev/null || true
  stop_leftovers
}
trap 'cleanup; rmdir "$BENCH_RUN_DIR" 2>/dev/null || true' EXIT
start_dev_issuer "${BENCH_ISSUER_PORT:-18444}" bench-issuer

BURST="${BENCH_PARALLEL:-50}"
# The burst last: its 150 Consul processes and the database's clean-up after them weigh on whatever runs next.
ALL=(cluster-create api-throughput billing snapshots upgrade wave-overhead consul-ui-sso azure-target faults create-burst)
if (($# > 0)); then names=("$@"); else names=("${ALL[@]}"); fi
# Seconds each benchmark may run (faults: its own PostgreSQL, Redis and clusters, and waits out its faults).
default_limit() {
  case "$1" in
    faults) echo 900 ;;
    create-burst) echo 660 ;;
    *) echo 300 ;;
  esac
}
failed=()
cd "$ROOT"
for name in "${names[@]}"; do
  js="dist/bench/$name.bench.js"
  # create-burst is the create benchmark's BENCH_PARALLEL mode (50 standard clusters at once unless set).
  if [[ "$name" == create-burst ]]; then js=dist/bench/cluster-create.bench.js; export BENCH_PARALLEL="$BURST"; else unset BENCH_PARALLEL; fi
  [[ -f "$js" ]] || die "no compiled benchmark $js (known: ${ALL[*]})"
  log "benchmark $name"
  rm -f "bench/results/$name.json"
  # SIGTERM lets the benchmark clean up (its own limit is shorter); SIGKILL 60 s later.
  limit="${BENCH_TIME_LIMIT:-$(default_limit "$name")}"
  if ! BENCH_TIME_LIMIT="$limit" timeout -k 60 "$limit" node "$js"; then
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
