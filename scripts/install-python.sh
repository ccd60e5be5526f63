#!/usr/bin/env bash
# Creates .venv and installs Forge's Python dependencies; does nothing when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.forge-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/python ]; then exit 0; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: this machine serves the CPU build of 2.13.0 from local disk.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev]'
touch "$stamp"
