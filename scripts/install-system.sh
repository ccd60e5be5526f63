#!/usr/bin/env bash
# Installs the Debian packages Forge needs (idempotent: installs only what is missing).
set -euo pipefail
pkgs=(redis-server postgresql chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0
      libharfbuzz-subset0 fonts-dejavu-core curl wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-system: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged redis-server service on 6379, the port `make run` gives its own Redis.
  # Only a service this script just installed is stopped; a Redis the machine already ran is left alone
  # (scripts/run-preflight.sh then says the port is taken).
  if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
    echo "install-system: disabling the redis-server system service (make run starts its own Redis)"
    $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
fi
