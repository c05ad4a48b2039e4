# shellcheck shell=bash
# Building the product and migrating its database; sourced after lib.sh.

# Prisma's client is generated code (gitignored): regenerate when the schema changes.
ensure_prisma_client() {
  local gen="$ROOT/libs/core/src/generated/prisma/client.ts"
  if [[ -f "$gen" && ! "$ROOT/prisma/schema.prisma" -nt "$gen" ]]; then return 0; fi
  log "generating the Prisma client"
  # The schema reads env("DATABASE_URL"): without it Prisma cannot read the schema's
  # configuration and falls back to downloading a native engine, which fails offline.
  (cd "$ROOT" && DATABASE_URL="postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME" CHECKPOINT_DISABLE=1 \
    run_logged "$LOCAL/logs/prisma-generate.log" node node_modules/prisma/build/index.js generate)
  touch "$gen"
}

# One TypeScript build for apps, libs, infra, tests and benchmarks (incremental).
build_app() {
  log "building (tsc -b)"
  (cd "$ROOT" && run_logged "$LOCAL/logs/tsc.log" node node_modules/typescript/bin/tsc -b)
}

# `prisma migrate deploy` for a database, skipped when every migration folder is
# already recorded as applied (the CLI lingers ~10 s before it exits).
migrate_db() {
  local url="$1" applied wanted
  wanted=$(cd "$ROOT/prisma/migrations" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tr '\n' ' ')
  applied=$(psql "$url" -Atqc "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY 1" 2>/dev/null | tr '\n' ' ' || true)
  if [[ "$applied" == "$wanted" ]]; then return 0; fi
  log "applying database migrations"
  (cd "$ROOT" && DATABASE_URL="$url" CHECKPOINT_DISABLE=1 run_logged "$LOCAL/logs/prisma-migrate.log" node node_modules/prisma/build/index.js migrate deploy)
}

# The migrated template database that test files and benchmarks clone
# (CREATE DATABASE ... TEMPLATE); exports where they find it. TEST_TEMPLATE_DATABASE
# names another one (two checkouts with different migrations on one PostgreSQL).
prepare_template_db() {
  local template="${TEST_TEMPLATE_DATABASE:-consul_cloud_test_template}"
  local admin="postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
  export TEST_ADMIN_DATABASE_URL="$admin" TEST_TEMPLATE_DATABASE="$template"
  if ! psql "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$template'" | grep -q 1; then
    psql "$admin" -qc "CREATE DATABASE $template" >/dev/null
  fi
  migrate_db "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$template"
}

# start_dev_issuer PORT NAME: a development identity issuer of the caller's own
# (npm start's may be running on 8443), exported as the API's token issuer, with the
# console's client (CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET) registered.
# Sets DEV_ISSUER_PID; the caller stops it.
start_dev_issuer() {
  local port="$1" name="$2"
  export ISSUER_PORT="$port" ISSUER_URL="https://127.0.0.1:$port"
  export AUTH_ISSUER="$ISSUER_URL" AUTH_METADATA_URL="$ISSUER_URL/.well-known/openid-configuration"
  # The console's confidential client, registered with this issuer: a secret of this run's own.
  export CONSOLE_CLIENT_ID="${CONSOLE_CLIENT_ID:-managed-consul-console}"
  export CONSOLE_CLIENT_SECRET="${CONSOLE_CLIENT_SECRET:-$(openssl rand -hex 32)}"
  PID_NAME="$name" node "$ROOT/dist/infra/local/issuer.js" >"$LOCAL/logs/$name.log" 2>&1 &
  DEV_ISSUER_PID=$!
  wait_for -t 20 curl -fsS --cacert "$NODE_EXTRA_CA_CERTS" -o /dev/null "$AUTH_METADATA_URL" ||
    die "the identity issuer $name did not start; see $LOCAL/logs/$name.log"
}
