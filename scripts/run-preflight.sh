#!/usr/bin/env bash
# Before `make run` starts its own Redis and web server: say clearly when their ports are already taken.
set -euo pipefail
REDIS_PORT=${FORGE_REDIS_PORT:-6379}
WEB_PORT=${FORGE_WEB_PORT:-8000}
SERVING_PORT=${FORGE_SERVING_PORT:-8001}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

holder() {
  local who=""
  command -v ss >/dev/null 2>&1 && who=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n 1)
  [ -z "$who" ] && command -v lsof >/dev/null 2>&1 && who=$(lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR==2 {print $1 " pid " $2}')
  echo "${who:-an unknown process}"
}

status=0
if listening "$REDIS_PORT"; then
  kind="something that is not Redis"
  hint="Stop that process"
  if command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    kind="another Redis server"
    hint="Stop it (for Debian's redis-server service: sudo systemctl disable --now redis-server)"
  fi
  cat >&2 <<MSG
make run: port $REDIS_PORT on 127.0.0.1 is already in use by $kind: $(holder "$REDIS_PORT").
  make run starts its own Redis on that port and stops it on Ctrl-C.
  $hint, or give make run another port:  make run FORGE_REDIS_PORT=6380
MSG
  status=1
fi
if listening "$WEB_PORT"; then
  cat >&2 <<MSG
make run: port $WEB_PORT on 127.0.0.1 is already in use by $(holder "$WEB_PORT") (is Forge already running?).
  Stop it, or serve Forge on another port: make run FORGE_WEB_PORT=8002
MSG
  status=1
fi
if listening "$SERVING_PORT"; then
  cat >&2 <<MSG
make run: port $SERVING_PORT on 127.0.0.1 is already in use by $(holder "$SERVING_PORT"); the serving process (predict)
  listens there. Stop it, or serve predict on another port: make run FORGE_SERVING_PORT=8003
MSG
  status=1
fi
exit $status
