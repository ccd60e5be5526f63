"""One table from the results the benchmark scripts left in <var dir>/results/ (plain text, or --markdown).

.venv/bin/python benchmarks/summary.py [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def _speed(row: dict[str, Any]) -> str:
    """The machine's speed during a registry_list row, and the row's figures at full speed (see its docstring)."""
    quiet = row.get("quiet")
    if not quiet:
        return ""
    figures = f"{quiet['p50']} / {quiet['p95']} ms" if "p95" in quiet else "too few"
    return f"; probe {row['probe_p50_us']} us; quiet ({quiet['n']} requests): {figures}"


def load(var_dir: Path, name: str) -> dict[str, Any] | None:
    path = var_dir / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: bool) -> str:
    return "meets goal" if ok else "MISSES goal"


def rows(var_dir: Path) -> list[list[str]]:
    out: list[list[str]] = []
    upload = load(var_dir, "upload_memory")
    if upload:
        how = "HTTP, gunicorn" if upload["mode"] == "http" else "parser+handler in-process (no endpoint yet)"
        out.append(
            [
                f"1 GiB upload: web process peak RSS growth ({how}, worst of {len(upload['runs'])})",
                f"{upload['peak_growth_mib_max']} MiB",
                "< 64 MiB",
                "",
                verdict(upload["peak_growth_mib_max"] < 64),
            ]
        )
        out.append(
            [
                f"1 GiB upload: throughput on loopback (median of {len(upload['runs'])}; best)",
                f"{upload['mb_per_s_median']} MB/s; {upload['mb_per_s_best']}",
                ">= 150 MB/s",
                "",
                verdict(upload["mb_per_s_median"] >= 150),
            ]
        )
    anchor = load(var_dir, "mlflow_anchor")
    anchor_rows = {r["key"]: r for r in (anchor or {}).get("rows", [])}
    mv = anchor_rows.get("mlflow_versions")
    rm = anchor_rows.get("mlflow_models")
    for vendor in ("sqlite", "postgresql"):
        listing = load(var_dir, f"registry_list_{vendor}")
        if not listing:
            continue
        for r in listing["rows"]:
            if r["rows"] is None:  # context rows (the framework's floor) have no goal
                continue
            anchor_cell = ""
            if r["key"] == "api_versions_100" and mv:
                anchor_cell = f"MLflow version search p95 {mv['p95']} ms (HTTP)"
            elif r["key"] == "api_models" and rm:
                anchor_cell = f"MLflow model search p95 {rm['p95']} ms (HTTP)"
            out.append(
                [
                    f"{r['name']}: server time p50 / p95 ({vendor}, in-process)",
                    f"{r['p50']} / {r['p95']} ms{_speed(r)}",
                    f"p95 <= {r['goal_p95_ms']:g} ms",
                    anchor_cell,
                    verdict(r["p95"] <= r["goal_p95_ms"]),
                ]
            )
        counts = {r["key"]: "/".join(map(str, r["queries"])) for r in listing["rows"]}
        out.append(
            [
                f"queries per request ({vendor}; one number = the same on every page)",
                ", ".join(f"{k} {v}" for k, v in counts.items()),
                "constant",
                "",
                verdict(all("/" not in v for v in counts.values())),
            ]
        )
    if anchor and "rows" in anchor:
        for c in anchor["comparisons"]:
            m, f = anchor_rows[c["mlflow"]], anchor_rows[c["forge"]]
            out.append(
                [
                    f"HTTP round trip p50 / p95, {c['label']} (MLflow {anchor['mlflow_version']})",
                    f"Forge {f['p50']} / {f['p95']} ms",
                    ">= 5x faster",
                    f"MLflow {m['p50']} / {m['p95']} ms; x{c['ratio_p50']} / x{c['ratio_p95']}",
                    verdict(c["ratio_p95"] >= 5 and c["ratio_p50"] >= 5),
                ]
            )
    elif anchor:
        out.append(
            [
                "MLflow anchor",
                "not measured",
                ">= 5x faster",
                f"stated {anchor['stated_anchor_ms']} ms: {anchor.get('mlflow_unavailable')}",
                "",
            ]
        )
    out += issue3_rows(var_dir)
    out += issue13_rows(var_dir)
    return out


def issue3_rows(var_dir: Path) -> list[list[str]]:
    """Measurement accuracy, parity cost and governance overhead (issue 3)."""
    out: list[list[str]] = []
    accuracy = load(var_dir, "benchmark_accuracy")
    for r in (accuracy or {}).get("rows", []):
        out.append(
            [
                f"benchmark p50 vs torch.utils.benchmark.Timer, {r['model']} batch {r['batch_size']} "
                f"(median of {len(r['rounds_diff_pct'])} rounds)",
                f"{r['forge_p50_ms']} ms vs {r['timer_median_ms']} ms: {r['diff_pct']:+.1f}%",
                f"within {accuracy['goal_pct']:g}%",
                f"rounds {min(r['rounds_diff_pct']):+.1f}% to {max(r['rounds_diff_pct']):+.1f}%; "
                f"Forge mean vs Timer {r.get('mean_diff_pct', float('nan')):+.1f}%",
                verdict(abs(r["diff_pct"]) <= accuracy["goal_pct"]),
            ]
        )
    for name in ("parity_cost", "parity_cost_h1024"):
        cost = load(var_dir, name)
        for r in (cost or {}).get("rows", []):
            bare = r["min_ms"]["torchscript"] + r["min_ms"]["onnxruntime"]
            out.append(
                [
                    f"parity run / two bare passes, {cost['samples']:,} samples, MLP 32-{cost.get('hidden', 64)}-2 "
                    f"vs ONNX, batch {r['batch_size']} (fastest of {cost['repeats']})",
                    f"{r['min_ms']['parity']} ms / {bare:.2f} ms = {r['ratio_min']:.2f}x",
                    f"<= {cost['goal_ratio']:g}x",
                    f"{r['ratio_min_without_generation']:.2f}x without drawing the inputs"
                    + (f"; lean loop {r['ratio_min_lean']:.2f}x" if r.get("ratio_min_lean") is not None else ""),
                    verdict(r["ratio_min"] <= cost["goal_ratio"]),
                ]
            )
    overhead = load(var_dir, "governance_overhead")
    for r in (overhead or {}).get("rows", []):
        out.append(
            [
                f"governance per served request (rollouts/serving), {r['model']}, batch {r['batch_size']}",
                f"{r['governance_p50_us']:.1f} us on a {r['bare_p50_us'] / 1000:.3f} ms forward = {r['ratio']:.2%}",
                f"< {overhead['goal_ratio']:.0%} of a 10 ms forward",
                "route / check / hash / id / count / log: "
                + " / ".join(f"{value:.1f}" for value in r["components_us"].values())
                + " us",
                verdict(r["ratio"] < overhead["goal_ratio"]) if r["bare_p50_us"] >= 5000 else "(absolute)",
            ]
        )
    serving = load(var_dir, "predict_serving")
    if serving:
        forge, anchor = serving["summary"]["forge"], serving["summary"]["anchor"]
        out.append(
            [
                "predict through the serving process, 32 connections (wrk)",
                f"{forge['rps_32']:.0f} req/s, p99 {forge['p99_32_ms']:.1f} ms (anchor {anchor['rps_32']:.0f} req/s, "
                f"p99 {anchor['p99_32_ms']:.1f} ms)",
                ">= 1,500 req/s, p99 <= 25 ms",
                f"governance cost {serving['governance_throughput_cost']:+.0%} of the anchor's throughput, "
                f"+{serving['added_p50_1conn_ms'] * 1000:.0f} us p50 at 1 connection",
                verdict(forge["rps_32"] >= 1500 and forge["p99_32_ms"] <= 25),
            ]
        )
    return out


def issue13_rows(var_dir: Path) -> list[list[str]]:
    assignment = load(var_dir, "rollout_assignment")
    if not assignment:
        return []
    single, split = assignment["rows"]["assign(unit)"], assignment["split"]
    return [
        [
            "rollout assignment in-process, single calls (median round; best)",
            f"{single['median_per_s']:,}/s; {single['best_per_s']:,}/s",
            f">= {assignment['goal_per_s']:,}/s",
            f"crc32 hash {assignment['rows']['hash zlib.crc32']['median_per_s']:,}/s (correlated across rollouts)",
            verdict(single["median_per_s"] >= assignment["goal_per_s"]),
        ],
        [
            f"rollout assignment, {split['units']:,} units at 10%: share; SRM p",
            f"{split['observed_share_pct']}%; p = {split['srm_p']}",
            "within 0.1 pp; p >= 0.001",
            "",
            verdict(split["deviation_pp"] <= 0.1 and not split["srm_mismatch"]),
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    args = parser.parse_args()
    header = ["measure", "Forge", "goal", "anchor", "verdict"]
    table = rows(args.var_dir)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        common.print_table(table, header)


if __name__ == "__main__":
    main()
