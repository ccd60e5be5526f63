#!/usr/bin/env bash
# Runs every benchmark of issues 2, 3 and 13 and prints one table. Results: var/bench/results/*.json.
#   bash benchmarks/run_all.sh            # the numbers in docs/performance.md
#   QUICK=1 bash benchmarks/run_all.sh    # smoke run: 64 MiB upload, 40 requests
# Needs: .venv (make install), curl, wrk, a Redis on 127.0.0.1:6399 (scripts/test-services.sh starts one).
# MLflow is installed on first use into var/mlflow-venv, never into .venv; if that fails the anchor row says why.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "${QUICK:-}" = 1 ]; then
  UPLOAD_ARGS=(--size-mib 64 --repeat 1); REQ_ARGS=(--requests 40 --warmup 5)
else
  UPLOAD_ARGS=(--size-mib 1024 --repeat 3); REQ_ARGS=(--requests 200 --warmup 20)
fi
rm -rf var/bench/results
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
$PY benchmarks/upload_memory.py "${UPLOAD_ARGS[@]}"
$PY benchmarks/registry_list.py "${REQ_ARGS[@]}"
$PY benchmarks/mlflow_anchor.py --install "${REQ_ARGS[@]}"
# issue 3: measurement accuracy, parity cost, governance overhead (in-process, one thread; no services needed)
if [ "${QUICK:-}" = 1 ]; then ACC_ARGS=(--rounds 2); PAR_ARGS=(--repeats 5); GOV_ARGS=(--repeats 60)
else ACC_ARGS=(--rounds 5); PAR_ARGS=(--repeats 15); GOV_ARGS=(--repeats 200); fi
$PY benchmarks/benchmark_accuracy.py --threads 1 "${ACC_ARGS[@]}"
$PY benchmarks/parity_cost.py --threads 1 "${PAR_ARGS[@]}"
$PY benchmarks/parity_cost.py --threads 1 --hidden 1024 "${PAR_ARGS[@]}"   # a heavier forward, for context
$PY benchmarks/governance_overhead.py --threads 1 "${GOV_ARGS[@]}"
# issue 13: sticky rollout assignment (in-process), predict through the serving process against the anchor (wrk)
$PY benchmarks/rollout_assignment.py
# issue 13: what metrics and JSON logs cost a served request (in-process)
$PY benchmarks/observe_cost.py
if [ "${QUICK:-}" = 1 ]; then SERVE_ARGS=(--duration 3 --rounds 1); else SERVE_ARGS=(--duration 10 --rounds 3); fi
$PY benchmarks/predict_serving.py "${SERVE_ARGS[@]}"
echo
echo "== summary"
$PY benchmarks/summary.py
