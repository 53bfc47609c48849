#!/usr/bin/env bash
# Manage a throwaway PostgreSQL server on loopback for skiff's tests.
#
#   hack/postgres.sh start [DIR] [PORT]   (defaults: /tmp/skiff-pg 55432)
#   hack/postgres.sh stop  [DIR]
#
# `start` prints only the connection URL on stdout (last line), e.g.
#   postgres://postgres@127.0.0.1:55432/skiff
# Everything else goes to stderr. Idempotent: an already-running server in DIR
# is reused, and an existing data directory is restarted rather than re-created.
# The server trusts all local connections: never point it at a shared machine's
# public interface (it only listens on 127.0.0.1 and a unix socket in DIR).
set -euo pipefail

DEFAULT_DIR=/tmp/skiff-pg
DEFAULT_PORT=55432
DB_NAME=skiff

log() { echo "postgres.sh: $*" >&2; }
die() { echo "postgres.sh: error: $*" >&2; exit 1; }

usage() {
  cat >&2 <<USAGE
usage: $0 start [DIR] [PORT]   start (or reuse) a server; prints its URL
       $0 stop  [DIR]          stop it (fast shutdown); ok if not running
defaults: DIR=$DEFAULT_DIR PORT=$DEFAULT_PORT
USAGE
  exit 2
}

# Locate a directory containing initdb and pg_ctl; prints it or returns 1.
find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $d && -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
  fi
  # Newest major version first.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    if [[ -x $d/initdb ]]; then echo "$d"; return 0; fi
  fi
  return 1
}

ensure_bindir() {
  if BIN=$(find_bindir); then return 0; fi
  [[ $EUID -eq 0 ]] || die "initdb/pg_ctl not found and not root (cannot apt-get install postgresql)"
  log "initdb/pg_ctl not found; installing Debian's postgresql package"
  {
    apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
  } >&2 || die "apt-get install postgresql failed"
  BIN=$(find_bindir) || die "postgresql installed but initdb/pg_ctl still not found"
}

# Run a command as the postgres OS user (Postgres refuses to run as root).
# When not root, run as the current user instead.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Is PID a live (non-zombie) postgres process?
pid_is_live_postgres() {
  local pid=$1 comm state
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  # A killed, not-yet-reaped postmaster is a zombie: kill -0 still succeeds.
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)
  [[ ($comm == postgres* || $comm == postmaster*) && $state != Z && $state != X ]]
}

# Is a postmaster for $DATA running? If not, clears stale lock files (data dir
# and unix-socket locks in $DIR) whose PID is dead, a zombie or reused by an
# unrelated process -- postgres would otherwise refuse to start.
server_running() {
  local pidfile=$DATA/postmaster.pid pid f
  if [[ -f $pidfile ]]; then
    pid=$(head -n1 "$pidfile" 2>/dev/null || true)
    if pid_is_live_postgres "$pid"; then
      return 0
    fi
    log "removing stale $pidfile (pid ${pid:-?} is not a running postgres)"
    rm -f "$pidfile"
  fi
  for f in "$DIR"/.s.PGSQL.*.lock; do
    [[ -f $f ]] || continue
    pid=$(head -n1 "$f" 2>/dev/null || true)
    if ! pid_is_live_postgres "$pid"; then
      log "removing stale socket lock $f"
      rm -f "$f" "${f%.lock}"
    fi
  done
  return 1
}

# Port the running server actually listens on (line 4 of postmaster.pid).
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null | tr -dc 0-9; }

cmd_start() {
  local port=$PORT
  [[ $port =~ ^[0-9]+$ ]] && (( port > 0 && port < 65536 )) || die "invalid port: $port"
  ensure_bindir

  mkdir -p "$DIR"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (install the postgresql package)"
    chown postgres: "$DIR"
  fi
  chmod 700 "$DIR"
  # Serialise concurrent start/stop on the same DIR.
  exec 9>"$DIR/.skiff-pg.lock"
  flock -w 120 9 || die "timed out waiting for lock on $DIR"

  if server_running; then
    local rp; rp=$(running_port)
    if [[ -n $rp && $rp != "$port" ]]; then
      log "server in $DIR already running on port $rp (requested $port); using $rp"
      port=$rp
    else
      log "server already running in $DIR (port $port)"
    fi
  else
    if [[ -d $DATA && ! -f $DATA/PG_VERSION ]]; then
      log "removing incomplete data dir $DATA"
      rm -rf "$DATA"
    fi
    if [[ -f $DATA/PG_VERSION ]]; then
      local have want
      have=$(cat "$DATA/PG_VERSION")
      want=$("$BIN/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
      if [[ $have != "$want" ]]; then
        log "data dir $DATA is for PostgreSQL $have but binaries are $want; re-initialising"
        rm -rf "$DATA"
      else
        log "reusing existing data dir $DATA"
      fi
    fi
    if [[ ! -d $DATA ]]; then
      log "initdb $DATA"
      if ! as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --locale=C -E UTF8 \
            >"$DIR/initdb.log" 2>&1; then
        tail -n 20 "$DIR/initdb.log" >&2 || true
        die "initdb failed (see $DIR/initdb.log)"
      fi
    fi
    [[ $EUID -eq 0 ]] && chown -R postgres: "$DIR"
    log "starting postgres on 127.0.0.1:$port (socket dir $DIR)"
    local loglines=0
    [[ -f $LOGFILE ]] && loglines=$(wc -l <"$LOGFILE")
    # 9>&-: the daemonised postmaster must not inherit (and so hold) our lock fd.
    if ! as_pg "$BIN/pg_ctl" -w -t 60 -D "$DATA" -l "$LOGFILE" \
          -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" \
          start >&2 9>&-; then
      echo "---- tail of $LOGFILE (this attempt) ----" >&2
      tail -n +"$((loglines + 1))" "$LOGFILE" 2>/dev/null | tail -n 20 >&2 || true
      die "postgres failed to start in $DIR on port $port (log: $LOGFILE)"
    fi
  fi

  # Create the skiff database if missing (over the unix socket in DIR).
  local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres)
  local exists
  exists=$(as_pg "${psql[@]}" -d postgres -tAc \
            "select 1 from pg_database where datname = '$DB_NAME'") \
    || die "cannot connect to postgres on socket $DIR port $port"
  if [[ $exists != 1 ]]; then
    log "creating database $DB_NAME"
    as_pg "${psql[@]}" -d postgres -c "create database $DB_NAME" >&2 \
      || die "create database $DB_NAME failed"
  fi

  echo "postgres://postgres@127.0.0.1:$port/$DB_NAME"
}

cmd_stop() {
  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "no data dir at $DATA; nothing to stop"
    return 0
  fi
  BIN=$(find_bindir) || die "pg_ctl not found"
  exec 9>"$DIR/.skiff-pg.lock"
  flock -w 120 9 || die "timed out waiting for lock on $DIR"
  if ! server_running; then
    log "not running in $DIR"
    return 0
  fi
  as_pg "$BIN/pg_ctl" -w -t 60 -D "$DATA" -m fast stop >&2 \
    || die "pg_ctl stop failed for $DATA"
}

[[ $# -ge 1 ]] || usage
CMD=$1; shift
case $CMD in
  start) [[ $# -le 2 ]] || usage; DIR=${1:-$DEFAULT_DIR}; PORT=${2:-$DEFAULT_PORT} ;;
  stop)  [[ $# -le 1 ]] || usage; DIR=${1:-$DEFAULT_DIR} ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
[[ $DIR == /* ]] || DIR=$(pwd)/$DIR
DIR=${DIR%/}
DATA=$DIR/data
LOGFILE=$DIR/log

case $CMD in
  start) cmd_start ;;
  stop)  cmd_stop ;;
esac
