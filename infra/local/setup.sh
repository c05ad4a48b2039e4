#!/usr/bin/env bash
# Set up and start the local stack: Debian packages, npm dependencies, Consul
# 1.8.7, development TLS, the Prisma client and the build (TypeScript, console),
# then PostgreSQL, Redis and Azurite (Azure Blob Storage emulator), .local/env
# and the migrations.
# Idempotent: a second run only checks that everything is in place.
#
#   bash infra/local/setup.sh && source .local/env
set -Eeuo pipefail

# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=infra/local/app.sh
source "$(dirname "${BASH_SOURCE[0]}")/app.sh"

STEP="start"
FAILED_CMD=""
# errtrace (-E) makes the ERR trap fire inside the ensure_* functions too; it
# only records the command, the EXIT trap reports (die() exits without ERR).
trap 'FAILED_CMD=$BASH_COMMAND' ERR
trap 'rc=$?; if ((rc != 0)); then
  printf "!!  SETUP FAILED in step \"%s\" (exit %s)%s; logs in %s/logs\n" \
    "$STEP" "$rc" "${FAILED_CMD:+ at: $FAILED_CMD}" "$LOCAL" >&2
fi' EXIT

step() {
  STEP="$1"
  shift
  "$@"
}

mkdir -p "$LOCAL/run" "$LOCAL/logs"

step "Debian packages" ensure_apt postgresql redis-server openssl curl
step "npm dependencies" ensure_npm_deps
step "Consul binary" ensure_consul
step "development TLS" ensure_dev_tls
# The build before the services: their port checks (refuse or replace what holds a port) are
# TypeScript (infra/local/processes.ts), run from dist/.
step "Prisma client" ensure_prisma_client
step "build" build_app
step "PostgreSQL" ensure_postgres
step "Redis" ensure_redis
step "Azurite" ensure_azurite
step "env file" write_env
step "database migrations" migrate_db "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"

log "local stack ready (PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, Azurite :$AZURITE_PORT); source $LOCAL/env"
