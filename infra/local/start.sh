#!/usr/bin/env bash
# npm start: set up whatever is missing, then run the whole product locally
# (identity issuer, API, worker) until Ctrl-C. `npm run stop` stops everything,
# clusters' Consul servers included.
set -Eeuo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
# shellcheck source=infra/local/lib.sh
source "$here/lib.sh"
# shellcheck disable=SC1091
source "$LOCAL/env"

export PORT="${PORT:-3000}" ISSUER_PORT="${ISSUER_PORT:-8443}" WORKER_PORT="${WORKER_PORT:-3001}" UI_PROXY_PORT="${UI_PROXY_PORT:-3002}"
export AUTH_ISSUER="${AUTH_ISSUER:-https://127.0.0.1:$ISSUER_PORT}"
export AUTH_METADATA_URL="${AUTH_METADATA_URL:-$AUTH_ISSUER/.well-known/openid-configuration}"
# The operator's own tenant locally: Platform.SRE counts only in tokens from it.
export OPERATOR_TENANT_ID="${OPERATOR_TENANT_ID:-99999999-9999-4999-8999-999999999999}"
# The console's sign-in: a confidential client registered with the local issuer, its secret
# made once (0600) and handed to both the issuer and the API.
export CONSOLE_ORIGIN="${CONSOLE_ORIGIN:-http://127.0.0.1:$PORT}"
export CONSOLE_CLIENT_ID="${CONSOLE_CLIENT_ID:-managed-consul-console}"
if [[ -z "${CONSOLE_CLIENT_SECRET:-}" ]]; then
  secret_file="$LOCAL/issuer/console-client-secret"
  if [[ ! -s "$secret_file" ]]; then
    mkdir -p "$LOCAL/issuer" && chmod 700 "$LOCAL/issuer"
    (umask 077 && openssl rand -hex 32 >"$secret_file")
  fi
  CONSOLE_CLIENT_SECRET="$(cat "$secret_file")"
  export CONSOLE_CLIENT_SECRET
fi

# The supervisor: this script keeps the issuer, the worker and the API up. A process that
# exits is started again after a backoff (1 s, doubling to 30 s; back to 1 s once it has run
# a minute), and the terminal and its log say so. Only Ctrl-C or `npm run stop` (which stops
# this script first, through run/supervisor.pid) ends it.
declare -A CMD=() PID=() DELAY=() STARTED=()
NAMES=()
STOPPING=""
stop_app() {
  local rc=$?
  trap - INT TERM EXIT
  STOPPING=1
  log "stopping the API, the worker and the identity issuer (clusters keep running; npm run stop stops everything)"
  local name
  for name in "${NAMES[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  for name in "${NAMES[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
  rm -f "$LOCAL/run/supervisor.pid"
  exit "$rc"
}
mkdir -p "$LOCAL/run" "$LOCAL/logs"
if [[ -f "$LOCAL/run/supervisor.pid" ]] && kill -0 "$(cat "$LOCAL/run/supervisor.pid")" 2>/dev/null; then
  die "npm start is already running (pid $(cat "$LOCAL/run/supervisor.pid")); run 'npm run stop' first"
fi
trap stop_app INT TERM EXIT
echo $$ >"$LOCAL/run/supervisor.pid"

_start() { # name: (re)starts it from its recorded command; output goes to .local/logs/<name>.log
  local name="$1"
  eval "exec ${CMD[$name]}" >>"$LOCAL/logs/$name.log" 2>&1 &
  PID[$name]=$!
  STARTED[$name]=$SECONDS
}

launch() { # name, then the command
  local name="$1"
  shift
  if [[ -f "$LOCAL/run/$name.pid" ]] && kill -0 "$(cat "$LOCAL/run/$name.pid")" 2>/dev/null; then
    die "$name is already running (pid $(cat "$LOCAL/run/$name.pid")); run 'npm run stop' first"
  fi
  CMD[$name]="$(printf '%q ' "$@")"
  DELAY[$name]=1
  NAMES+=("$name")
  _start "$name"
}

# Waits for any process to exit and starts it again after its backoff, until stopped.
supervise() {
  local name code ran
  while :; do
    wait -n "${PID[@]}" 2>/dev/null || true
    [[ -z "$STOPPING" ]] || return 0
    for name in "${NAMES[@]}"; do
      kill -0 "${PID[$name]}" 2>/dev/null && continue
      wait "${PID[$name]}" 2>/dev/null && code=0 || code=$?
      ran=$((SECONDS - STARTED[$name]))
      ((ran < 60)) || DELAY[$name]=1
      warn "$name (pid ${PID[$name]}) exited with status $code after ${ran} s; starting it again in ${DELAY[$name]} s (log: $LOCAL/logs/$name.log)"
      echo "==> supervisor: $name exited with status $code; restarting in ${DELAY[$name]} s" >>"$LOCAL/logs/$name.log"
      # The backoff itself: nothing to wait for but time (Ctrl-C interrupts it).
      sleep "${DELAY[$name]}" & wait $! || true
      [[ -z "$STOPPING" ]] || return 0
      _start "$name"
      log "$name started again (pid ${PID[$name]})"
      DELAY[$name]=$((DELAY[$name] * 2 > 30 ? 30 : DELAY[$name] * 2))
    done
  done
}

launch issuer node "$ROOT/dist/infra/local/issuer.js"
wait_for -t 20 curl -fsS --cacert "$NODE_EXTRA_CA_CERTS" -o /dev/null "$AUTH_METADATA_URL" ||
  die "the identity issuer did not start; see $LOCAL/logs/issuer.log"
launch worker node "$ROOT/dist/apps/worker/src/main.js"
launch api node "$ROOT/dist/apps/api/src/main.js"
wait_for -t 30 curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" ||
  die "the API did not become ready; see $LOCAL/logs/api.log"
wait_for -t 30 curl -fsS -o /dev/null "http://127.0.0.1:$WORKER_PORT/healthz" ||
  die "the worker did not become ready; see $LOCAL/logs/worker.log"

cat <<MSG

  Managed Consul is running.

  Console    $CONSOLE_ORIGIN/      (sign in: pick a test user, a tenant and roles)
  Consul UI  http://<cluster-id>.ui.localhost:$UI_PROXY_PORT/ui/   (signed in from the console: Open Consul UI)
  API        http://127.0.0.1:$PORT      (OpenAPI docs: http://127.0.0.1:$PORT/docs)
  Worker     http://127.0.0.1:$WORKER_PORT/healthz
  Logs       $LOCAL/logs/{api,worker,issuer}.log

  Get a token:
    TOKEN=\$(npm run --silent token -- --tenant 11111111-1111-1111-1111-111111111111 --user alice --roles Clusters.ReadWrite)

  Create a cluster:
    curl -s -X POST http://127.0.0.1:$PORT/v1/clusters \\
      -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      -d '{"name":"demo","subscriptionId":"00000000-0000-0000-0000-000000000001","resourceGroup":"rg-demo","region":"westeurope","tier":"standard"}'

  Then: GET /v1/operations/{id}, GET /v1/clusters/{id}/client-config, POST /v1/clusters/{id}/tokens.

  Operator (SRE) token: Platform.SRE counts only from the operator's tenant, $OPERATOR_TENANT_ID:
    SRE=\$(npm run --silent token -- --tenant $OPERATOR_TENANT_ID --user sre --roles Platform.SRE)
  A process that exits is started again (see the log). Ctrl-C stops the API and
  the worker; 'npm run stop' stops everything.

MSG

# Keep running until Ctrl-C or npm run stop, restarting what exits.
supervise
