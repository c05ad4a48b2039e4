#!/usr/bin/env bash
# Stop everything the project started locally, by pid, never by name:
#   0. npm start's supervisor   1. every $LOCAL/run/*.pid (api, worker, issuer, azurite, ...)
#   2. Consul agents and clusters' public endpoints run from $LOCAL (started detached by the product)
#   3. Redis   4. PostgreSQL
# Steps 0-2 are infra/local/processes.ts (SIGTERM, SIGKILL after 10 s; a pid reused by another
# process is left alone). Idempotent: with nothing running it prints so and exits 0.
set -euo pipefail

# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOPPED=0
GRACE=10 # seconds between SIGTERM and SIGKILL

# Processes of the apps exist only once the build has run (setup.sh builds before it starts anything).
if [[ -f "$PROCESSES" ]]; then
  # --- 0. npm start's supervisor first, so it does not start again what is stopped below;
  # it stops the processes it runs itself.
  STOPPED=$((STOPPED + $(processes stop --grace "$GRACE" --command-has infra/local/start.js --label "npm start (supervisor)" "$LOCAL/run/supervisor.pid")))

  # --- 1. pid files of the apps (a process may remove its own while we go).
  # Redis has its own shutdown below (its pid file lives here too).
  shopt -s nullglob
  pidfiles=()
  for pidfile in "$LOCAL"/run/*.pid; do
    [[ "$(basename "$pidfile")" == redis.pid ]] || pidfiles+=("$pidfile")
  done
  ((${#pidfiles[@]} == 0)) || STOPPED=$((STOPPED + $(processes stop --grace "$GRACE" "${pidfiles[@]}")))

  # --- 2. Consul agents and public endpoints: clusters are started detached by the product, without pid files here.
  STOPPED=$((STOPPED + $(processes stop-consul "$LOCAL")))
elif compgen -G "$LOCAL/run/*.pid" >/dev/null; then
  warn "$PROCESSES is missing (npm run build makes it): the processes of $LOCAL/run/*.pid and the Consul agents are not stopped"
fi

# --- 3. Redis -----------------------------------------------------------------
redis_pid=""
[[ -f "$LOCAL/run/redis.pid" ]] && redis_pid="$(tr -dc '0-9' <"$LOCAL/run/redis.pid")"
if redis_answers; then
  # SHUTDOWN NOSAVE: no RDB dump (none is configured); the AOF is still flushed.
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [[ -n "$redis_pid" ]]; then
    wait_for -t "$GRACE" eval "! _proc_alive $redis_pid" || kill -KILL "$redis_pid" 2>/dev/null || true
  else
    wait_for -t "$GRACE" eval "! redis_answers" ||
      warn "redis on port $REDIS_PORT still answers after SHUTDOWN (no pid file to kill it by)"
  fi
  log "stopped redis (port $REDIS_PORT${redis_pid:+, pid $redis_pid})"
  STOPPED=$((STOPPED + 1))
elif [[ -n "$redis_pid" ]] && _proc_alive "$redis_pid" &&
  [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$redis_pid/cmdline")" == redis-server* ]]; then
  # Running but not answering.
  STOPPED=$((STOPPED + $(processes stop --grace "$GRACE" "$LOCAL/run/redis.pid")))
fi
rm -f "$LOCAL/run/redis.pid"

# --- 4. PostgreSQL ------------------------------------------------------------
if [[ -x "$PG_BIN/pg_ctl" ]] && pg_running; then
  pg_ctl_as_postgres stop -m fast -w -t 60 >/dev/null ||
    die "pg_ctl stop failed (log: $PG_LOG)"
  log "stopped postgres ($PG_DATA)"
  STOPPED=$((STOPPED + 1))
fi

((STOPPED > 0)) || log "nothing of the local stack was running"
exit 0
