#!/usr/bin/env bash
# Stop everything the project started locally, by pid, never by name:
#   1. every $LOCAL/run/*.pid (api, worker, issuer, azurite, ...)
#   2. Consul agents run from $LOCAL (clusters started detached by the product)
#   3. Redis   4. PostgreSQL
# Idempotent: with nothing running it prints so and exits 0.
set -euo pipefail

# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOPPED=0
GRACE=10 # seconds between SIGTERM and SIGKILL

# Start time of a process, in seconds since the epoch (from /proc).
proc_start_epoch() {
  local stat btime ticks
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # drop "pid (comm) ": comm may contain spaces
  # starttime is field 22 of stat, i.e. the 20th after "pid (comm)".
  ticks="$(awk '{print $20}' <<<"$stat")"
  btime="$(awk '/^btime/ {print $2}' /proc/stat)"
  echo $((btime + ticks / $(getconf CLK_TCK)))
}

# terminate LABEL PID...: SIGTERM all, poll up to $GRACE s, SIGKILL leftovers.
terminate() {
  local label="$1" pid
  shift
  local pids=()
  for pid in "$@"; do
    [[ "$pid" != "$$" ]] && _proc_alive "$pid" && pids+=("$pid")
  done
  ((${#pids[@]} > 0)) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + GRACE)) left
  while :; do
    left=()
    for pid in "${pids[@]}"; do _proc_alive "$pid" && left+=("$pid"); done
    ((${#left[@]} > 0 && SECONDS < deadline)) || break
    sleep 0.1
  done
  if ((${#left[@]} > 0)); then
    warn "$label: pid ${left[*]} ignored SIGTERM for ${GRACE}s, sending SIGKILL"
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  log "stopped $label (pid ${pids[*]})"
  STOPPED=$((STOPPED + ${#pids[@]}))
}

# --- 0. npm start's supervisor first, so it does not start again what is stopped below;
# it stops the processes it runs itself.
if [[ -f "$LOCAL/run/supervisor.pid" ]]; then
  pid="$(tr -dc '0-9' <"$LOCAL/run/supervisor.pid" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && _proc_alive "$pid" && [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *start.sh* ]]; then
    terminate "npm start (supervisor)" "$pid"
  fi
  rm -f "$LOCAL/run/supervisor.pid"
fi

# --- 1. pid files of the apps -----------------------------------------------
# Redis has its own shutdown below (its pid file lives here too).
shopt -s nullglob
for pidfile in "$LOCAL"/run/*.pid; do
  name="$(basename "$pidfile" .pid)"
  [[ "$name" == redis ]] && continue
  # A process may remove its own pid file while we go (start.sh stops its children).
  pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && _proc_alive "$pid"; then
    # Guard against pid reuse after a reboot or crash: a process that started
    # after the pid file was written is not the one that wrote it.
    started="$(proc_start_epoch "$pid" || echo 0)"
    written="$(stat -c %Y "$pidfile" 2>/dev/null || echo "$started")"
    if ((started > written + 1)); then
      warn "$name: pid $pid was reused by another process; not touching it"
    else
      terminate "$name" "$pid"
    fi
  fi
  rm -f "$pidfile"
done

# --- 2. Consul agents ---------------------------------------------------------
# Clusters are started detached by the product, without pid files here; find
# them by their command line: a consul binary whose arguments mention $LOCAL/.
consul_pids=()
for dir in /proc/[0-9]*; do
  pid="${dir#/proc/}"
  [[ "$pid" == "$$" ]] && continue
  cmdline="$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline")" || continue
  argv0="${cmdline%% *}"
  [[ "${argv0##*/}" == consul && "$cmdline" == *"$LOCAL/"* ]] && consul_pids+=("$pid")
done
((${#consul_pids[@]} == 0)) || terminate "consul agents" "${consul_pids[@]}"

# --- 3. Redis -----------------------------------------------------------------
redis_pid=""
[[ -f "$LOCAL/run/redis.pid" ]] && redis_pid="$(tr -dc '0-9' <"$LOCAL/run/redis.pid")"
if redis_answers; then
  # SHUTDOWN NOSAVE: no RDB dump (none is configured); the AOF is still flushed.
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [[ -n "$redis_pid" ]]; then
    wait_for -t "$GRACE" eval "! _proc_alive $redis_pid" || terminate "redis (forced)" "$redis_pid"
  else
    wait_for -t "$GRACE" eval "! redis_answers" ||
      warn "redis on port $REDIS_PORT still answers after SHUTDOWN (no pid file to kill it by)"
  fi
  log "stopped redis (port $REDIS_PORT${redis_pid:+, pid $redis_pid})"
  STOPPED=$((STOPPED + 1))
elif [[ -n "$redis_pid" ]] && _proc_alive "$redis_pid" &&
  [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$redis_pid/cmdline")" == redis-server* ]]; then
  terminate "redis" "$redis_pid" # running but not answering
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
