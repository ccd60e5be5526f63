#!/usr/bin/env bash
# Starts the real services the test suite uses: Redis on 127.0.0.1:6399 and a throw-away PostgreSQL
# cluster on 127.0.0.1:54329 (initdb runs as the postgres user, which refuses root). Idempotent.
# Prints the environment to export: eval "$(scripts/test-services.sh start)".
set -euo pipefail
REDIS_PORT=${FORGE_TEST_REDIS_PORT:-6399}
PG_PORT=${FORGE_TEST_PG_PORT:-54329}
PG_DIR=${FORGE_TEST_PG_DIR:-/tmp/forge-test-pg}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

start() {
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --logfile /tmp/forge-test-redis.log >/dev/null
  fi
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    mkdir -p "$PG_DIR" && chown postgres:postgres "$PG_DIR" 2>/dev/null || true
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  fi
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/forge"
}

stop() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -f "$PG_DIR/data/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
}

"${1:-start}"
