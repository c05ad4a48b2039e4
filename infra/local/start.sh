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

# The supervisor (infra/local/start.ts) keeps the issuer, the worker and the API up: a process
# that exits is started again after a backoff (1 s, doubling to 30 s; back to 1 s once it has
# run a minute), and the terminal and its log say so. Only Ctrl-C or `npm run stop` (which
# stops it first, through run/supervisor.pid) ends it.
exec node "$ROOT/dist/infra/local/start.js"
