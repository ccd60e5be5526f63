"""Drift at volume: 1,000,000 rows x 50 features from raw rows, and a 30-day window of hourly sketches.

    .venv/bin/python benchmarks/drift_scale.py                  # the numbers in docs/performance.md
    .venv/bin/python benchmarks/drift_scale.py --rows 200000 --repeats 2   # quicker

Raw: `drift_report` on 1,000,000 current rows against 1,000,000 reference rows (both raw: both sorted in the run),
and against a reference prepared ahead (sorted at baseline upload), 50 float32 features, Evidently's default
methods (normed Wasserstein at this size) and, separately, KS on every feature. Sketches: 720 hourly sketches
(50 features, 30 bins each) serialised as the database stores them; timed from the 720 byte strings to the result
(parse, merge, drift). Also the cost of writing one hour's sketch (what ingestion adds per batch), and each kernel
alone. Goals (issue 12): raw <= 3 s on this 2-core machine, sketches <= 100 ms.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_VAR, interleaved, machine_info, write_result

from governance.drift import NUMERIC, DriftOptions, drift_report, prepare
from governance.drift.numeric import ks_statistic, sorted_finite, wasserstein
from governance.drift.sketch import SketchLayout, drift_from_sketches, merge_sketch_bytes, sketch_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--rows-per-hour", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--var-dir", type=Path, default=DEFAULT_VAR)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    names = [f"f{i:02d}" for i in range(args.features)]
    kinds = dict.fromkeys(names, NUMERIC)
    shifts = np.where(np.arange(args.features) < args.features // 5, 0.2, 0.0)
    reference = {n: rng.normal(0.0, 1.0, args.rows).astype(np.float32) for n in names}
    current = {n: rng.normal(shifts[i], 1.0, args.rows).astype(np.float32) for i, n in enumerate(names)}
    prepared = {n: prepare(v, NUMERIC) for n, v in reference.items()}
    ks = DriftOptions(method="ks")

    results: dict[str, list[float]] = {}
    results.update(
        interleaved(
            {
                "raw_both_sides": lambda: drift_report(reference, current, kinds),
                "raw_prepared_reference": lambda: drift_report(prepared, current, kinds),
                "raw_ks_prepared_reference": lambda: drift_report(prepared, current, kinds, ks),
            },
            repeats=args.repeats,
        )
    )
    column_ref, column_cur = prepared[names[0]].sorted, sorted_finite(current[names[0]])
    results.update(
        interleaved(
            {
                "kernel_sort_1_column": lambda: sorted_finite(current[names[0]]),
                "kernel_wasserstein_1_column": lambda: wasserstein(column_ref, column_cur),
                "kernel_ks_1_column": lambda: ks_statistic(column_ref, column_cur),
            },
            repeats=args.repeats * 5,
        )
    )

    layout = SketchLayout.from_reference(prepared)
    reference_sketch = sketch_of(layout, prepared)
    blobs = []
    for hour in range(args.hours):
        drift_now = 0.3 * (hour / args.hours)
        rows = {n: rng.normal(shifts[i] * drift_now * 3, 1.0, args.rows_per_hour) for i, n in enumerate(names)}
        blobs.append(sketch_of(layout, rows).to_bytes())
    hour_rows = {n: rng.normal(0, 1, args.rows_per_hour * 50).astype(np.float32) for n in names}

    def from_sketches() -> dict:
        merged = merge_sketch_bytes(layout, blobs)
        assert merged is not None
        return drift_from_sketches(reference_sketch, merged)

    results.update(
        interleaved(
            {
                "sketches_30_days": from_sketches,
                "sketch_write_100k_rows": lambda: sketch_of(layout, hour_rows).to_bytes(),
            },
            repeats=args.repeats * 5,
        )
    )
    sketch_result = from_sketches()
    raw_result = drift_report(prepared, current, kinds)
    verdicts = sum(e["drifted"] for e in raw_result["features"])
    print(
        f"{args.rows:,} rows x {args.features} features each side (float32); {args.hours} hourly sketches of "
        f"{args.rows_per_hour:,} rows ({len(blobs[0]):,} bytes each)"
    )
    for name, times in results.items():
        print(f"  {name:28s} best {min(times) * 1000:9.1f} ms  median {float(np.median(times)) * 1000:9.1f} ms")
    print(
        f"raw: {verdicts} of {args.features} features drifted (expected {int((shifts > 0).sum())}); sketches: "
        f"{sum(bool(e['drifted']) for e in sketch_result['features'])} drifted over "
        f"{sketch_result['rows']['current']:,} rows"
    )
    write_result(
        args.var_dir,
        "drift_scale",
        {
            "machine": machine_info(),
            "args": vars(args) | {"var_dir": str(args.var_dir)},
            "times_s": results,
            "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


if __name__ == "__main__":
    main()
