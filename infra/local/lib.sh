# shellcheck shell=bash
# Shared helpers for the local development stack. Sourced by setup.sh, stop.sh
# and the other scripts in infra/local; safe under `set -euo pipefail`.
#
# Everything the stack creates at runtime lives in $LOCAL (gitignored):
#   apt/ consul/          Consul 1.8.7 unpacked from Debian bullseye
#   tls/                  development CA + HTTPS certificate for the local issuer
#   clone-id              this clone's identity (random, made once by setup): names
#                         its PostgreSQL folder /var/lib/postgresql/managed-consul/<id>
#                         (data/, socket/, postgres.log; see PG_CLUSTERS below)
#   redis/                Redis data (AOF) and generated redis.conf
#   azurite/              Azurite (Azure Blob Storage emulator) data
#   run/*.pid             pid files of everything we start (stop.sh reads them)
#   logs/                 logs of postgres, redis, azurite, apt, npm, ...
#   env                   sourceable environment for the apps and tests
#
# Ports and the runtime dir can be overridden from the environment:
#   PG_PORT (55432), REDIS_PORT (56379), AZURITE_PORT (10000),
#   LOCAL_DIR ($ROOT/.local), PG_CLUSTERS_DIR (/var/lib/postgresql/managed-consul).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# LOCAL_DIR is also what write_env exports, so sourcing $LOCAL/env and then
# running another script keeps pointing at the same runtime dir.
LOCAL="${LOCAL_DIR:-$ROOT/.local}"
PG_PORT="${PG_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
AZURITE_PORT="${AZURITE_PORT:-10000}"

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
# PostgreSQL's files must be reachable by the postgres user wherever the clone is (a clone
# under /root, mode 0700, is not): a folder of this clone's own under $PG_CLUSTERS, named by
# the clone's identity, not its path. The identity is a random id made once into
# $LOCAL/clone-id (ensure_clone_id), so a clone deleted and made again at the same path gets a
# new one, and so a fresh cluster, never the earlier clone's. The folder records the clone it
# belongs to (`owner`: its $LOCAL; `clone-id`), and setup removes the folders whose clone is
# gone (prune_orphan_pg_roots). A cluster that an earlier version made in $LOCAL/postgres is
# kept where it is; one it made under $PG_CLUSTERS/<hash of $LOCAL> is moved to this clone's
# id (only when this very $LOCAL used it: its logs/postgres.log points there).
# PG_CLUSTERS_DIR: another parent folder (the tests keep theirs apart).
PG_CLUSTERS="${PG_CLUSTERS_DIR:-/var/lib/postgresql/managed-consul}"

# The 32 hex digits in FILE (a clone-id file), or status 1.
_read_clone_id() {
  local id
  id="$(tr -dc '0-9a-f' 2>/dev/null <"$1" | head -c 32)" || true
  [[ ${#id} == 32 ]] || return 1
  echo "$id"
}

# The earlier versions' folder for this $LOCAL (named from a hash of its path).
_legacy_pg_root() { echo "$PG_CLUSTERS/$(printf '%s' "$LOCAL" | sha256sum | cut -c1-16)"; }

# This very $LOCAL used the earlier versions' folder: its logs/postgres.log link points there
# (a clone made again at the same path has a new $LOCAL without that link).
_legacy_pg_ours() {
  local root
  root="$(_legacy_pg_root)"
  [[ -f "$root/data/PG_VERSION" && ! -e "$root/clone-id" && "$(readlink "$LOCAL/logs/postgres.log" 2>/dev/null)" == "$root/postgres.log" ]]
}

# Sets CLONE_ID and the PG_* paths. Before this clone's first setup (no id yet) PG_ROOT is
# empty: there is no cluster of its own to stop or to use.
_pg_paths() {
  CLONE_ID="$(_read_clone_id "$LOCAL/clone-id" || true)"
  if [[ -f "$LOCAL/postgres/data/PG_VERSION" ]]; then
    PG_ROOT="$LOCAL/postgres"
  elif [[ -n "$CLONE_ID" ]]; then
    PG_ROOT="$PG_CLUSTERS/$CLONE_ID"
  elif _legacy_pg_ours; then
    PG_ROOT="$(_legacy_pg_root)"
  else
    PG_ROOT=""
  fi
  PG_DATA="${PG_ROOT:+$PG_ROOT/data}"
  PG_SOCKET="${PG_ROOT:+$PG_ROOT/socket}"
  PG_LOG="${PG_ROOT:+$PG_ROOT/postgres.log}"
}
_pg_paths

CONSUL_VERSION=1.8.7
CONSUL_DEB="consul_1.8.7+dfsg1-2+b3_amd64.deb"
CONSUL_DEB_SHA256="e4e888bba104daba1d9161f49bfc52649a7e4efd45b1a7ead5bc54f2cb9c89d9"
CONSUL_BIN="$LOCAL/consul/usr/bin/consul"

DB_NAME=consul_cloud
DB_USER=consul_cloud
DB_PASSWORD=consul_cloud

# Azurite's well-known development account (public, documented by Microsoft;
# the same for every Azurite). Real storage accounts' keys never come from here.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# ---------------------------------------------------------------------------
# small helpers

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf '!!  %s\n' "$*" >&2; }
die() {
  printf '!!  ERROR: %s\n' "$*" >&2
  exit 1
}

# wait_for [-t SECONDS] CMD...: run CMD every 0.1 s until it succeeds.
# Returns 1 after the timeout (default 30 s).
wait_for() {
  local timeout=30
  if [[ "${1:-}" == -t ]]; then
    timeout="$2"
    shift 2
  fi
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# run_logged LOGFILE CMD...: keep noisy tools quiet on success; on failure show
# the end of their output so the error is visible without opening the log.
run_logged() {
  local logfile="$1"
  shift
  mkdir -p "$(dirname "$logfile")"
  local rc=0
  "$@" >"$logfile" 2>&1 || rc=$?
  if ((rc != 0)); then
    warn "command failed (exit $rc): $*"
    warn "last lines of $logfile:"
    tail -n 30 "$logfile" | sed 's/^/    /' >&2
  fi
  return "$rc"
}

require_root() {
  [[ "$(id -u)" == 0 ]] || die "$1 needs root (installs packages, runs PostgreSQL as the postgres user)"
}

# Run a command as the postgres OS user, from a directory it can read (runuser
# keeps the caller's cwd, often /root, which postgres tools complain about).
as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# The local stack's process management (port holders, refuse-or-replace, stop by pid) is
# TypeScript, infra/local/processes.ts, run from its build: setup.sh builds before it starts the
# services. What runs before node_modules and the build exist (the helpers above, apt, npm,
# Consul, TLS, the clone's identity) is this file's.
PROCESSES="$ROOT/dist/infra/local/processes.js"
processes() {
  [[ -f "$PROCESSES" ]] || die "$PROCESSES is missing: build first (npm run build, or npm start / npm test, which set up and build)"
  node "$PROCESSES" "$@"
}

# ---------------------------------------------------------------------------
# npm

ensure_npm_deps() {
  # npm install rewrites node_modules/.package-lock.json, so "lock newer than that
  # file" means package-lock.json changed since the last install.
  if [[ -d "$ROOT/node_modules" && -f "$ROOT/node_modules/.package-lock.json" &&
    ! "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]]; then
    return 0
  fi
  # `npm install` with the committed lock, not `npm ci`: npm 11 here leaves other
  # platforms' optional packages (msgpackr-extract-darwin-*, ...) out of the lock,
  # and `npm ci` then refuses it as out of sync. The versions are the lock's either way.
  log "installing npm dependencies (npm install from package-lock.json)"
  (cd "$ROOT" && run_logged "$LOCAL/logs/npm-install.log" npm install --no-audit --no-fund --loglevel=error)
}

# ---------------------------------------------------------------------------
# Debian packages

_APT_UPDATED=""
# Marker so that a policy-rc.d left behind by an interrupted run is recognised
# as ours and removed; a policy-rc.d someone else installed is never touched.
_POLICY_MARKER="# managed-consul infra/local/lib.sh: temporary"

_pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# ensure_apt NAME...: install the Debian packages that are missing.
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    _pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]} > 0)) || return 0
  require_root "installing ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"

  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [[ -f "$policy" ]] && grep -qF "$_POLICY_MARKER" "$policy"; then
    rm -f "$policy"
  fi
  # Keep maintainer scripts from starting system services (a system redis on
  # 6379, the default postgres cluster on 5432): we run our own instances.
  # Exit code 101 = "action forbidden" for invoke-rc.d.
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n%s\nexit 101\n' "$_POLICY_MARKER" >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi

  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  # DPkg::Lock::Timeout: wait for another apt/dpkg instead of failing at once.
  local apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if [[ -z "$_APT_UPDATED" ]]; then
    run_logged "$LOCAL/logs/apt.log" apt-get "${apt_opts[@]}" update || rc=$?
    _APT_UPDATED=1
  fi
  if ((rc == 0)); then
    run_logged "$LOCAL/logs/apt.log" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" || rc=$?
  fi

  [[ -z "$own_policy" ]] || rm -f "$policy"
  ((rc == 0)) || die "apt-get failed to install: ${missing[*]} (log: $LOCAL/logs/apt.log)"
  for p in "${missing[@]}"; do
    _pkg_installed "$p" || die "package $p still not installed after apt-get install"
  done
}

# ---------------------------------------------------------------------------
# Consul 1.8.7, taken from Debian bullseye (bookworm has no consul package).
# A private apt configuration under $LOCAL/apt is used only to download the
# .deb; nothing on the system is installed or changed.

_consul_ok() {
  local out
  [[ -x "$CONSUL_BIN" ]] || return 1
  out="$("$CONSUL_BIN" version 2>/dev/null)" || return 1
  [[ "${out%%$'\n'*}" == "Consul v$CONSUL_VERSION" ]]
}

_sha256_ok() {
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

ensure_consul() {
  local apt_dir="$LOCAL/apt"
  # The .deb stays too: the local ARM serves it to the instances it boots (their cloud-init installs it).
  _consul_ok && _sha256_ok "$apt_dir/$CONSUL_DEB" "$CONSUL_DEB_SHA256" && return 0
  log "fetching Consul $CONSUL_VERSION from Debian bullseye"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb http://deb.debian.org/debian bullseye main" >"$apt_dir/sources.list"
  local opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
  )
  local deb="$apt_dir/$CONSUL_DEB"
  if ! _sha256_ok "$deb" "$CONSUL_DEB_SHA256"; then
    rm -f "$deb"
    # Only refresh the bullseye index when it is not there yet (it is frozen
    # for this package; the download below fails loudly if it is stale).
    if ! compgen -G "$apt_dir/lists/*bullseye*Packages*" >/dev/null; then
      run_logged "$LOCAL/logs/apt-consul.log" apt-get "${opts[@]}" update ||
        die "apt-get update for the bullseye index failed (log: $LOCAL/logs/apt-consul.log)"
    fi
    # apt-get download writes into the current directory; pin the exact version.
    (cd "$apt_dir" && run_logged "$LOCAL/logs/apt-consul.log" \
      apt-get "${opts[@]}" download "consul=1.8.7+dfsg1-2+b3") ||
      die "apt-get download consul failed (log: $LOCAL/logs/apt-consul.log)"
    _sha256_ok "$deb" "$CONSUL_DEB_SHA256" ||
      die "sha256 of $deb does not match $CONSUL_DEB_SHA256"
  fi
  # Unpack next to the target and swap, so a failed unpack never leaves a
  # half-populated $LOCAL/consul behind.
  rm -rf "$LOCAL/consul.tmp"
  dpkg -x "$deb" "$LOCAL/consul.tmp"
  rm -rf "$LOCAL/consul"
  mv "$LOCAL/consul.tmp" "$LOCAL/consul"
  _consul_ok || die "$CONSUL_BIN does not report Consul v$CONSUL_VERSION"
}

# ---------------------------------------------------------------------------
# Development TLS: a local CA (trusted by Node through NODE_EXTRA_CA_CERTS) and
# an HTTPS certificate for the local identity issuer (passport-azure-ad only
# accepts https metadata URLs). RSA keys: usable by every consumer, including
# JWT libraries that might be handed the same key.

ensure_dev_tls() {
  local dir="$LOCAL/tls"
  mkdir -p "$dir"
  if [[ ! -s "$dir/ca.pem" || ! -s "$dir/ca-key.pem" ]]; then
    log "creating development CA in $dir"
    rm -f "$dir/issuer.pem" "$dir/issuer-key.pem" # must chain to the new CA
    (
      umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" \
        -subj "/O=managed-consul local development/CN=managed-consul local dev CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    ) || die "openssl failed to create the development CA"
    chmod 644 "$dir/ca.pem"
  fi

  # (Re)issue the issuer certificate when missing, not signed by this CA,
  # expiring within 30 days, or without a name it must answer for.
  if [[ -s "$dir/issuer.pem" && -s "$dir/issuer-key.pem" ]] &&
    openssl verify -CAfile "$dir/ca.pem" "$dir/issuer.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$dir/issuer.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 &&
    openssl x509 -in "$dir/issuer.pem" -noout -ext subjectAltName 2>/dev/null | grep -q 'DNS:\*\.vault\.localhost'; then
    return 0
  fi
  # The local ARM server of the tests serves the local cloud's Key Vaults too (https://<name>.vault.localhost:<port>/).
  log "issuing HTTPS certificate for the local issuer (localhost, *.vault.localhost, 127.0.0.1)"
  cat >"$dir/issuer.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:*.vault.localhost,IP:127.0.0.1
EOF
  (
    umask 077
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
      -keyout "$dir/issuer-key.pem" -out "$dir/issuer.csr" \
      -subj "/O=managed-consul local development/CN=localhost" 2>/dev/null &&
      openssl x509 -req -in "$dir/issuer.csr" -sha256 -days 825 \
        -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$dir/issuer.ext" -out "$dir/issuer.pem" 2>/dev/null
  ) || die "openssl failed to issue the issuer certificate"
  rm -f "$dir/issuer.csr" "$dir/issuer.ext"
  chmod 644 "$dir/issuer.pem"
  chmod 600 "$dir/ca-key.pem" "$dir/issuer-key.pem"
}

# ---------------------------------------------------------------------------
# Ports held by what is not this clone's own. A second clone, or a clone made again after
# the first was deleted, must never use another clone's services silently (an Azurite whose
# data folder is gone fails every request with a bare "HTTP 500").

# Something listens on 127.0.0.1:PORT.
_port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# refuse_or_replace NAME PORT VARIABLE: the service on PORT is not this clone's. When it is
# provably a leftover of a clone whose folder is gone, stop it (this clone then starts its
# own); otherwise stop here, naming the process that holds the port and what to do
# (infra/local/processes.ts: refuseOrReplace).
refuse_or_replace() {
  processes refuse-or-replace "$1" "$2" "$3" "$LOCAL" || exit 1
}

# ---------------------------------------------------------------------------
# PostgreSQL 15: a project-local cluster, run by the postgres OS user (the
# server refuses root), listening on 127.0.0.1:$PG_PORT and a socket in
# $PG_SOCKET.

pg_ctl_as_postgres() { as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }

pg_running() {
  [[ -n "$PG_DATA" && -f "$PG_DATA/PG_VERSION" ]] && pg_ctl_as_postgres status >/dev/null 2>&1
}

# _with_clusters_lock CMD...: CMD holding $PG_CLUSTERS/.lock, so that one clone's setup never
# judges another's folder while that one is being made, moved or claimed.
_with_clusters_lock() {
  mkdir -p "$PG_CLUSTERS"
  (
    flock -w 60 9 || die "another setup holds $PG_CLUSTERS/.lock for over 60 s"
    "$@"
  ) 9>>"$PG_CLUSTERS/.lock"
}

# The clone whose $LOCAL is DIR holds the identity ID.
_clone_holds() { [[ "$(_read_clone_id "$1/clone-id" || true)" == "$2" ]]; }

# A PostgreSQL folder under $PG_CLUSTERS whose clone is gone (infra/local/processes.ts: pgRootOrphaned).
_pg_root_orphaned() { processes pg-root-orphaned "$1"; }

# The pid of the PostgreSQL server running on the cluster in ROOT/data, or status 1.
_pg_root_server() {
  local pid
  pid="$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null | tr -dc '0-9')" || return 1
  [[ -n "$pid" ]] && _proc_alive "$pid" && [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *postgres* ]] || return 1
  echo "$pid"
}

# Gives this clone its identity once ($LOCAL/clone-id, random) and its PostgreSQL folder
# $PG_CLUSTERS/<id>, recording there which clone owns it. A copy of another clone that is
# still there (its .local copied along, so the same id, but the folder names the other clone
# as owner) gets an identity of its own. A clone moved elsewhere keeps its folder.
ensure_clone_id() {
  [[ "$PG_ROOT" != "$LOCAL/postgres" ]] || return 0
  mkdir -p "$LOCAL"
  _with_clusters_lock _claim_pg_root
  _pg_paths
}

_claim_pg_root() {
  _pg_paths
  local owner id
  if [[ -n "$CLONE_ID" ]]; then
    owner="$(head -n 1 "$PG_CLUSTERS/$CLONE_ID/owner" 2>/dev/null || true)"
    if [[ -n "$owner" && ! "$owner" -ef "$LOCAL" ]] && _clone_holds "$owner" "$CLONE_ID"; then
      warn "this clone is a copy of the clone at ${owner%/.local} (same $LOCAL/clone-id): giving it an identity of its own"
      CLONE_ID=""
    fi
  fi
  if [[ -z "$CLONE_ID" ]]; then
    id="$(od -An -N16 -tx1 /dev/urandom | tr -dc '0-9a-f')"
    if _legacy_pg_ours; then
      local legacy pid
      legacy="$(_legacy_pg_root)"
      if pid="$(_pg_root_server "$legacy")"; then
        log "stopping this clone's PostgreSQL (pid $pid) to move its cluster to the clone's identity"
        as_postgres "$PG_BIN/pg_ctl" -D "$legacy/data" stop -m fast -w -t 60 >/dev/null ||
          die "PostgreSQL in $legacy does not stop"
      fi
      log "moving this clone's PostgreSQL cluster from $legacy to $PG_CLUSTERS/$id"
      mv "$legacy" "$PG_CLUSTERS/$id"
    fi
    printf '%s\n' "$id" >"$LOCAL/clone-id.tmp"
    mv "$LOCAL/clone-id.tmp" "$LOCAL/clone-id"
    CLONE_ID="$id"
  fi
  # The identity first, then the owner: a folder without an owner is never judged.
  mkdir -p "$PG_CLUSTERS/$CLONE_ID"
  printf '%s\n' "$CLONE_ID" >"$PG_CLUSTERS/$CLONE_ID/clone-id"
  printf '%s\n' "$LOCAL" >"$PG_CLUSTERS/$CLONE_ID/owner"
}

# Removes the PostgreSQL folders under $PG_CLUSTERS whose clone is gone (see _pg_root_orphaned),
# so deleted clones' clusters do not pile up. Never this clone's own, never one a live clone
# owns, never one whose server still runs (ensure_postgres stops such a leftover when it holds
# this clone's port; the next setup then removes it).
prune_orphan_pg_roots() {
  [[ -d "$PG_CLUSTERS" ]] || return 0
  _with_clusters_lock _prune_orphan_pg_roots
}

_prune_orphan_pg_roots() {
  local root name pid
  for root in "$PG_CLUSTERS"/*/; do
    root="${root%/}"
    name="${root##*/}"
    [[ "$name" =~ ^([0-9a-f]{16}|[0-9a-f]{32})$ && "$root" != "$PG_ROOT" ]] || continue
    _pg_root_orphaned "$root" || continue
    if pid="$(_pg_root_server "$root")"; then
      warn "$root belongs to a clone that is gone ($(head -n 1 "$root/owner")), but its PostgreSQL (pid $pid) still runs: left for now"
      continue
    fi
    log "removing $root: PostgreSQL data of a clone that is gone ($(head -n 1 "$root/owner"))"
    rm -rf "$root"
  done
}

# write_if_changed FILE: content from stdin; returns 0 when FILE was changed.
_write_if_changed() {
  local file="$1" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$file"
  return 0
}

_pg_configure() {
  # Regenerated on every run so edits here reach existing clusters; returns 0
  # when something changed (the caller then restarts a running server).
  local changed=1
  _write_if_changed "$PG_DATA/project.conf" <<EOF && changed=0
# Written by infra/local/lib.sh (ensure_postgres); edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET'
max_connections = 200
# Development speed; a crash may lose recent commits, which is fine here.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  _write_if_changed "$PG_DATA/pg_hba.conf" <<EOF && changed=0
# Written by infra/local/lib.sh (ensure_postgres); edits are overwritten.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
host    all       all       127.0.0.1/32   scram-sha-256
EOF
  chown postgres:postgres "$PG_DATA/project.conf" "$PG_DATA/pg_hba.conf"
  chmod 600 "$PG_DATA/project.conf" "$PG_DATA/pg_hba.conf"
  return "$changed"
}

ensure_postgres() {
  [[ -x "$PG_BIN/pg_ctl" ]] || die "PostgreSQL $PG_MAJOR binaries not found in $PG_BIN (install the postgresql package)"
  require_root "ensure_postgres"
  ensure_clone_id
  mkdir -p "$PG_ROOT" "$LOCAL/logs" "$PG_SOCKET"
  chown postgres:postgres "$PG_ROOT" "$PG_SOCKET"
  chmod 700 "$PG_SOCKET"
  as_postgres test -w "$PG_ROOT" ||
    die "the postgres user cannot reach $PG_ROOT (a parent directory is not traversable)"
  # The log lives beside the data (the postgres user writes it); $LOCAL/logs points at it.
  [[ "$PG_LOG" == "$LOCAL/logs/postgres.log" ]] || ln -sfn "$PG_LOG" "$LOCAL/logs/postgres.log"

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initialising PostgreSQL $PG_MAJOR cluster in $PG_DATA"
    rm -rf "$PG_DATA" # leftovers of an interrupted initdb
    mkdir -p "$PG_DATA"
    chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    run_logged "$LOCAL/logs/initdb.log" as_postgres "$PG_BIN/initdb" -D "$PG_DATA" \
      -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 ||
      die "initdb failed (log: $LOCAL/logs/initdb.log)"
    echo "include = 'project.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  local version
  version="$(cat "$PG_DATA/PG_VERSION")"
  [[ "$version" == "$PG_MAJOR" ]] || die "$PG_DATA holds a PostgreSQL $version cluster, expected $PG_MAJOR"

  local changed=""
  _pg_configure && changed=1
  # pg_ctl -l writes the log as the postgres user.
  touch "$PG_LOG"
  chown postgres:postgres "$PG_LOG"

  if pg_running; then
    # Restart when the config changed, or when it is not answering on PG_PORT
    # (e.g. started earlier with another port).
    if [[ -n "$changed" ]] || ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
      log "restarting PostgreSQL (configuration changed)"
      pg_ctl_as_postgres restart -m fast -w -t 60 -l "$PG_LOG" >/dev/null ||
        die "PostgreSQL restart failed (log: $PG_LOG)"
    fi
  else
    # Something else answering on the port is another clone's or a system PostgreSQL: never used.
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || _port_taken "$PG_PORT"; then
      refuse_or_replace PostgreSQL "$PG_PORT" PG_PORT
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_ctl_as_postgres start -w -t 60 -l "$PG_LOG" >/dev/null ||
      die "PostgreSQL failed to start (log: $PG_LOG)"
  fi
  wait_for -t 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
    die "PostgreSQL is not accepting connections on 127.0.0.1:$PG_PORT"

  # Role and database, idempotently. CREATEDB: tests create per-file databases
  # from a template. The password is (re)set only when the role is created.
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<EOF ||
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN CREATEDB;
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
    die "creating role/database $DB_NAME failed"
  # Last, so that a leftover server that held this clone's port (stopped above) goes too.
  prune_orphan_pg_roots
}

# ---------------------------------------------------------------------------
# Redis: a project-local server on 127.0.0.1:$REDIS_PORT (the system redis that
# the Debian package may start on 6379 is never used).

redis_answers() {
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

# The pid of this clone's Redis: the pid in $LOCAL/run/redis.pid, alive and running in $LOCAL/redis.
_redis_pid() {
  local pid
  pid="$(tr -dc '0-9' 2>/dev/null <"$LOCAL/run/redis.pid")" || return 1
  [[ -n "$pid" ]] && _proc_alive "$pid" && [[ "$(readlink "/proc/$pid/cwd")" == "$(readlink -f "$LOCAL/redis")" ]] || return 1
  echo "$pid"
}

ensure_redis() {
  local own
  if own="$(_redis_pid)" && [[ "$(processes port-holder "$REDIS_PORT" || true)" != "$own" ]]; then
    # Ours, but started with another REDIS_PORT: replace it (as ensure_postgres and ensure_azurite do).
    log "stopping Redis (pid $own): it was started on another port"
    processes stop "$LOCAL/run/redis.pid" >/dev/null || exit 1
    own=""
  fi
  if redis_answers; then
    [[ -z "$own" ]] || return 0
    refuse_or_replace Redis "$REDIS_PORT" REDIS_PORT
  fi
  command -v redis-server >/dev/null || die "redis-server not installed (install the redis-server package)"
  mkdir -p "$LOCAL/redis" "$LOCAL/run" "$LOCAL/logs"
  cat >"$LOCAL/redis/redis.conf" <<EOF
# Written by infra/local/lib.sh (ensure_redis); edits are overwritten.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
daemonize yes
pidfile $LOCAL/run/redis.pid
dir $LOCAL/redis
logfile $LOCAL/logs/redis.log
# BullMQ: jobs must never be evicted, and must survive a restart.
maxmemory-policy noeviction
appendonly yes
appendfsync everysec
save ""
EOF
  # Daemonized, redis-server returns before it binds, so a busy port would only
  # show up as a timeout below: check first.
  if _port_taken "$REDIS_PORT"; then refuse_or_replace Redis "$REDIS_PORT" REDIS_PORT; fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server "$LOCAL/redis/redis.conf" ||
    die "redis-server failed to start (log: $LOCAL/logs/redis.log)"
  # It answers LOADING while replaying the AOF, so poll for a real PONG.
  wait_for -t 30 redis_answers ||
    die "Redis did not answer PONG on port $REDIS_PORT within 30 s (log: $LOCAL/logs/redis.log)"
}

# ---------------------------------------------------------------------------
# Azurite: the Azure Blob Storage emulator (npm package `azurite`, a dev
# dependency), blob service only, on 127.0.0.1:$AZURITE_PORT, data in
# $LOCAL/azurite. Started detached (its own session), so it outlives setup.sh
# like PostgreSQL and Redis; stop.sh stops it through $LOCAL/run/azurite.pid.

AZURITE_MAIN="$ROOT/node_modules/azurite/dist/src/blob/main.js"

# Any request answers with a "Server: Azurite-Blob/<version>" header (an
# unsigned list request gets 403, which is fine: it proves the service is up).
azurite_answers() {
  local headers
  headers="$(curl -s -m 2 -o /dev/null -D - "http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT?comp=list" 2>/dev/null)" ||
    return 1
  [[ "$headers" == *$'\n'[Ss]erver:\ Azurite-Blob/* ]]
}

# A process exists and is not a zombie (kill -0 succeeds on a zombie).
_proc_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# The pid in $LOCAL/run/azurite.pid, when that process is alive and is Azurite.
_azurite_pid() {
  local pid
  pid="$(tr -dc '0-9' 2>/dev/null <"$LOCAL/run/azurite.pid")" || return 1
  [[ -n "$pid" ]] || return 1
  _proc_alive "$pid" || return 1
  [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *azurite* ]] || return 1
  echo "$pid"
}

ensure_azurite() {
  if azurite_answers; then
    local own
    # This clone's Azurite: its pid file names it, and it keeps its data in this clone's $LOCAL/azurite.
    if own="$(_azurite_pid)" && [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$own/cmdline")" == *" --location $LOCAL/azurite "* ]]; then return 0; fi
    refuse_or_replace Azurite "$AZURITE_PORT" AZURITE_PORT
  fi
  [[ -f "$AZURITE_MAIN" ]] || die "Azurite not found at $AZURITE_MAIN (npm dependencies not installed?)"
  mkdir -p "$LOCAL/azurite" "$LOCAL/run" "$LOCAL/logs"
  local pidfile="$LOCAL/run/azurite.pid" pid
  if pid="$(_azurite_pid)" &&
    [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" != *" --blobPort $AZURITE_PORT "* ]]; then
    # Ours, but started with another AZURITE_PORT: replace it (as ensure_postgres does).
    log "stopping Azurite (pid $pid): it was started on another port"
    processes stop "$pidfile" >/dev/null || exit 1
  fi
  if pid="$(_azurite_pid)"; then
    # Ours, still starting (or hung): wait for it below rather than start another.
    log "Azurite (pid $pid) is running but not answering yet; waiting for it"
  else
    if _port_taken "$AZURITE_PORT"; then refuse_or_replace Azurite "$AZURITE_PORT" AZURITE_PORT; fi
    log "starting Azurite (blob) on 127.0.0.1:$AZURITE_PORT"
    rm -f "$pidfile"
    # Azurite's last line on shutdown has no newline: keep each run's lines apart.
    if [[ -s "$LOCAL/logs/azurite.log" && -n "$(tail -c 1 "$LOCAL/logs/azurite.log")" ]]; then
      echo >>"$LOCAL/logs/azurite.log"
    fi
    # setsid -f: a forked process in a session of its own, so neither setup.sh
    # exiting nor a Ctrl-C in the terminal (npm start) reaches it. Its shell
    # writes its own pid and then execs node, so the pid file names the Azurite
    # process itself. --skipApiVersionCheck: @azure/storage-blob sends a newer
    # API version than Azurite knows; --disableTelemetry: it would otherwise
    # try to reach an outside host.
    # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
    setsid -f bash -c 'echo $$ >"$1"; shift; exec "$@"' azurite "$pidfile" \
      node "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
      --location "$LOCAL/azurite" --skipApiVersionCheck --disableTelemetry --silent \
      </dev/null >>"$LOCAL/logs/azurite.log" 2>&1
  fi
  local deadline=$((SECONDS + 30))
  until azurite_answers; do
    # Exited (bad flag, port taken meanwhile, ...): no point waiting out the timeout.
    pid="$(tr -dc '0-9' 2>/dev/null <"$pidfile" || true)"
    if [[ -n "$pid" ]] && ! _proc_alive "$pid"; then
      die "Azurite exited during start-up (log: $LOCAL/logs/azurite.log)"
    fi
    ((SECONDS < deadline)) ||
      die "Azurite did not answer on port $AZURITE_PORT within 30 s (log: $LOCAL/logs/azurite.log)"
    sleep 0.1
  done
}

azurite_connection_string() {
  printf 'DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%s/%s;' \
    "$AZURITE_ACCOUNT" "$AZURITE_ACCOUNT_KEY" "$AZURITE_PORT" "$AZURITE_ACCOUNT"
}

# ---------------------------------------------------------------------------
# $LOCAL/env: `source .local/env` before running the apps or tests.

write_env() {
  mkdir -p "$LOCAL"
  local tmp
  tmp="$(mktemp "$LOCAL/env.XXXXXX")"
  {
    echo "# Written by infra/local/setup.sh; regenerated on every run."
    _env_line DATABASE_URL "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
    _env_line REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
    _env_line AZURE_STORAGE_CONNECTION_STRING "$(azurite_connection_string)"
    # Azurite's blob endpoint: the one http endpoint an audit export's container URL may name locally.
    _env_line AUDIT_EXPORT_DEV_ENDPOINT "http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT"
    _env_line CONSUL_BIN "$CONSUL_BIN"
    _env_line CONSUL_DEB "$LOCAL/apt/$CONSUL_DEB"
    _env_line NODE_EXTRA_CA_CERTS "$LOCAL/tls/ca.pem"
    _env_line LOCAL_DIR "$LOCAL"
  } >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$LOCAL/env"
}

# export NAME='value' (single quotes, inner quotes escaped): sourceable by any
# POSIX shell and readable by dotenv-style parsers.
_env_line() {
  printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
}
