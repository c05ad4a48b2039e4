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
