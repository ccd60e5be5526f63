"""Evidently's DataDriftPreset vs Forge's drift computation on the same data, side by side in one run.

    .venv/bin/python benchmarks/drift_evidently.py                 # 100,000 rows x 20 numeric columns each side
    .venv/bin/python benchmarks/drift_evidently.py --rows 500 --columns 8 --repeats 3   # KS regime (<= 1,000 rows)

Evidently is installed on first use into its own virtualenv (var/evidently-venv: evidently, pandas<3, plotly<6),
never into Forge's. Both sides read the same float64 arrays (written once as .npy), use the same methods (Evidently's
default rule, which Forge follows), and the script checks the statistic and the verdict of every column. Timed:
Evidently's `Report([DataDriftPreset()]).run(current, reference)` (the DataFrames built before timing) against
Forge's `drift_report(reference, current, kinds)` from raw arrays (sorting both sides included), and Forge with the
reference prepared (sorted) ahead, as a baseline stored at upload is. Runs alternate (common.interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_VAR, REPO, interleaved, machine_info, print_table, write_result

from governance.drift import NUMERIC, DriftOptions, drift_report, prepare
from governance.drift.methods import method_named

EVIDENTLY_VENV = REPO / "var" / "evidently-venv"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3", "plotly<6"]

EVIDENTLY_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
from evidently.legacy.report import Report as LegacyReport
from evidently.legacy.metric_preset import DataDriftPreset as LegacyPreset

folder, repeats = sys.argv[1], int(sys.argv[2])
ref, cur = np.load(folder + "/reference.npy"), np.load(folder + "/current.npy")
names = [f"f{i:02d}" for i in range(ref.shape[1])]
ref_df, cur_df = pd.DataFrame(ref, columns=names), pd.DataFrame(cur, columns=names)
times = []
for _ in range(repeats):
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur_df, reference_data=ref_df)
    times.append(time.perf_counter() - started)
columns = {}
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        columns[config["column"]] = {"method": config["method"], "value": metric["value"],
                                     "threshold": config["threshold"]}
# The legacy preset states each column's verdict explicitly; read once (untimed) to check the derived verdicts.
legacy = LegacyReport(metrics=[LegacyPreset()])
legacy.run(current_data=cur_df, reference_data=ref_df)
for metric in legacy.as_dict()["metrics"]:
    by_column = metric.get("result", {}).get("drift_by_columns")
    if by_column:
        for name, entry in by_column.items():
            columns[name]["drifted"] = bool(entry["drift_detected"])
            columns[name]["stattest"] = entry["stattest_name"]
import evidently
print(json.dumps({"times": times, "columns": columns, "version": evidently.__version__}))
"""


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing Evidently into {EVIDENTLY_VENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS], check=True)
    return python


def make_data(rows: int, columns: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference N(0, s) per column; the current side shifts some columns by fractions of a std (some near the 0.1
    threshold, so a sloppy statistic would flip a verdict) and leaves the rest alone."""
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 3.0, columns)
    reference = rng.normal(0.0, scales, size=(rows, columns))
    shifts = np.zeros(columns)
    shifts[: columns // 2] = np.linspace(0.02, 0.4, columns // 2)
    current = rng.normal(
        shifts * scales, scales * np.where(np.arange(columns) % 5 == 4, 1.3, 1.0), size=(rows, columns)
    )
    return reference, current


EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "K-S p_value": "ks",
    "Jensen-Shannon distance": "jensenshannon",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="Evidently runs (Forge runs 10x as many)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--var-dir", type=Path, default=DEFAULT_VAR)
    args = parser.parse_args()

    reference, current = make_data(args.rows, args.columns, args.seed)
    names = [f"f{i:02d}" for i in range(args.columns)]
    kinds = dict.fromkeys(names, NUMERIC)
    ref_cols = {n: np.ascontiguousarray(reference[:, i]) for i, n in enumerate(names)}
    cur_cols = {n: np.ascontiguousarray(current[:, i]) for i, n in enumerate(names)}

    python = ensure_evidently()
    with tempfile.TemporaryDirectory() as folder:
        np.save(f"{folder}/reference.npy", reference)
        np.save(f"{folder}/current.npy", current)
        done = subprocess.run(
            [str(python), "-c", EVIDENTLY_SCRIPT, folder, str(args.repeats)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    evidently = json.loads(done.stdout.strip().splitlines()[-1])

    prepared_ref = {n: prepare(v, NUMERIC) for n, v in ref_cols.items()}
    ref32 = {n: v.astype(np.float32) for n, v in ref_cols.items()}
    cur32 = {n: v.astype(np.float32) for n, v in cur_cols.items()}
    options = DriftOptions()
    result = drift_report(ref_cols, cur_cols, kinds, options)
    timings = interleaved(
        {
            "forge_raw": lambda: drift_report(ref_cols, cur_cols, kinds, options),
            "forge_raw_1thread": lambda: drift_report(ref_cols, cur_cols, kinds, options, threads=1),
            "forge_prepared_ref": lambda: drift_report(prepared_ref, cur_cols, kinds, options),
            "forge_raw_float32": lambda: drift_report(ref32, cur32, kinds, options),
        },
        repeats=args.repeats * 10,
    )

    ours = {entry["name"]: entry for entry in result["features"]}
    rows, mismatches, worst = [], 0, 0.0
    for name in names:
        theirs = evidently["columns"][name]
        method = EVIDENTLY_METHODS[theirs["method"]]
        entry = ours[name]
        value = entry["p_value"] if method_named(entry["method"]).tests_p_value else entry["statistic"]
        same = method == entry["method"] and theirs["drifted"] == entry["drifted"]
        mismatches += not same
        worst = max(worst, abs(value - theirs["value"]))
        rows.append(
            [
                name,
                method,
                entry["method"],
                f"{theirs['value']:.6f}",
                f"{value:.6f}",
                theirs["drifted"],
                entry["drifted"],
                "ok" if same else "MISMATCH",
            ]
        )
    print_table(rows, ["column", "evidently", "forge", "evidently value", "forge value", "ev drift", "forge drift", ""])
    ev_best = min(evidently["times"])
    summary = {name: {"best_s": min(t), "median_s": float(np.median(t))} for name, t in timings.items()}
    print()
    print(
        f"Evidently {evidently['version']} DataDriftPreset, {args.rows:,} rows x {args.columns} columns each side:"
        f" best {ev_best:.3f} s, median {np.median(evidently['times']):.3f} s ({args.repeats} runs)"
    )
    for name, stats in summary.items():
        print(
            f"  {name:20s} best {stats['best_s'] * 1000:8.1f} ms  median {stats['median_s'] * 1000:8.1f} ms"
            f"  speed-up (best/best) {ev_best / stats['best_s']:7.0f}x"
        )
    print(f"verdict mismatches: {mismatches} of {len(names)}; largest |statistic difference|: {worst:.2e}")
    write_result(
        args.var_dir,
        "drift_evidently",
        {
            "machine": machine_info(),
            "rows": args.rows,
            "columns": args.columns,
            "evidently": {"version": evidently["version"], "times_s": evidently["times"]},
            "forge": {name: t for name, t in timings.items()},
            "mismatches": mismatches,
            "max_statistic_difference": worst,
            "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
