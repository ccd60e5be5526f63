"""Sticky rollout assignment in-process: calls per second, the hash choices, and the split of a million units.

    .venv/bin/python benchmarks/rollout_assignment.py [--units 1000000] [--calls 200000] [--repeats 7] [--json]

Goal (issue 13): >= 1,000,000 assignments/s in-process; with 1,000,000 units at a 10% split the observed share is
within 0.1 percentage point of 10% and passes the sample-ratio-mismatch check (chi-squared, p >= 0.001).

What it does, all in one process and one thread:
- times `Router.assign(unit)` one call at a time, as a server makes it (the figure the goal is about), for unit ids
  like "user-123456", and for requests without a unit id (a random draw); then `Router.assign_many` over a list;
- times the same single-call shape with each hash considered: BLAKE2b-64 (chosen), SHA-256, zlib.crc32, and
  GrowthBook's hash (FNV-1a 32-bit applied twice, in pure Python as its Python SDK runs it); each assigns the same
  way (point below the share's threshold), so the rows differ only by the hash;
- checks what the speed would cost in quality: for each hash, how often a unit is in the challenger of two
  rollouts with different salts at 10% (independent assignment: 1.00%), on 100,000 units;
- assigns 1,000,000 units at 10% and reports the observed share and the SRM test;
- times a 1 kB unit id (the longest accepted) and the refusal of a 10 kB one.
The calls are timed in interleaved rounds (benchmarks/common.interleaved) and reported as the best round and the
median round; the machine's speed is noted with common.speed_probe before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

from rollouts.routing import CHALLENGER, MAX_UNIT_BYTES, Router, UnitTooLong, share_threshold
from rollouts.stats import srm_check

GOAL_PER_S = 1_000_000
SALT = "5eed5a17c0ffee00"
_SCALE = 1 << 64


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_alternatives(salt: str, share: float) -> dict[str, Callable[[str], bool]]:
    """One single-call assigner per hash: True when the unit goes to the challenger."""
    salt_bytes = salt.encode()
    threshold64 = share_threshold(share)
    threshold_bytes = threshold64.to_bytes(8, "big")
    threshold32 = threshold64 >> 32
    threshold_gb = round(share * 100)  # GrowthBook: a bucket in 0..9999
    crc_seed = zlib.crc32(salt_bytes)

    def blake2b(unit: str, _h=hashlib.blake2b) -> bool:
        return _h(salt_bytes + unit.encode(), digest_size=8).digest() < threshold_bytes

    def sha256(unit: str, _h=hashlib.sha256) -> bool:
        return _h(salt_bytes + unit.encode()).digest()[:8] < threshold_bytes

    def crc32(unit: str, _c=zlib.crc32) -> bool:
        return _c(unit.encode(), crc_seed) < threshold32

    def growthbook_fnv(unit: str) -> bool:
        # GrowthBook's hash version 2: fnv32a(str(fnv32a(seed + value))) % 10000 / 10000
        return _fnv1a32(str(_fnv1a32(salt_bytes + unit.encode())).encode()) % 10000 < threshold_gb

    return {
        "blake2b-64 (chosen)": blake2b,
        "sha-256": sha256,
        "zlib.crc32": crc32,
        "growthbook fnv-1a x2": growthbook_fnv,
    }


def per_second(times: list[float], calls: int) -> dict[str, float]:
    return {
        "best_per_s": round(calls / min(times)),
        "median_per_s": round(calls / statistics.median(times)),
        "best_ns_per_call": round(min(times) / calls * 1e9),
    }


def measure(units_total: int, calls: int, repeats: int) -> dict[str, Any]:
    units = [f"user-{i}" for i in range(calls)]
    router = Router(SALT, 10.0)
    assign = router.assign
    nones = [None] * calls

    def single() -> None:
        for unit in units:
            assign(unit)

    def random_draw() -> None:
        for unit in nones:
            assign(unit)

    def batch() -> None:
        router.assign_many(units)

    alternatives = hash_alternatives(SALT, 10.0)
    loops: dict[str, Callable[[], Any]] = {"assign(unit)": single, "assign(None)": random_draw, "assign_many": batch}
    for name, fn in alternatives.items():
        loops[f"hash {name}"] = lambda fn=fn: [fn(u) for u in units]  # type: ignore[misc]
    probe_before = common.speed_probe()
    times = common.interleaved(loops, repeats)
    probe_after = common.speed_probe()
    rows = {name: per_second(t, calls) for name, t in times.items()}

    # Quality: two rollouts (salts) at 10% each; independent assignment puts 1% of units in both challengers.
    sample = units[:100_000]
    overlap = {}
    for name in alternatives:
        first = hash_alternatives("a" * 16, 10.0)[name]
        second = hash_alternatives("b" * 16, 10.0)[name]
        overlap[name] = round(sum(first(u) and second(u) for u in sample) / len(sample) * 100, 3)

    # The split of a million units at 10%.
    million = [f"user-{i}" for i in range(units_total)]
    arms = Router(SALT, 10.0).assign_many(million)
    challenger = arms.count(CHALLENGER)
    srm = srm_check([units_total - challenger, challenger], [0.9, 0.1])
    assert srm is not None
    split = {
        "units": units_total,
        "challenger": challenger,
        "observed_share_pct": round(challenger / units_total * 100, 4),
        "deviation_pp": round(abs(challenger / units_total * 100 - 10.0), 4),
        "srm_chi2": round(srm.chi2, 3),
        "srm_p": round(srm.p_value, 4),
        "srm_mismatch": srm.mismatch,
    }

    # Long unit ids: the longest accepted, and the refusal of a 10 kB one.
    longest = "u" * MAX_UNIT_BYTES
    ten_kb = "u" * 10_240

    def refuse() -> None:
        with contextlib.suppress(UnitTooLong):
            assign(ten_kb)

    long_times = common.interleaved(
        {
            "1 kB unit": lambda: [assign(longest) for _ in range(2000)],
            "10 kB refused": lambda: [refuse() for _ in range(2000)],
        },
        repeats,
    )
    long_rows = {name: round(min(t) / 2000 * 1e9) for name, t in long_times.items()}
    return {
        "calls_per_round": calls,
        "rounds": repeats,
        "speed_probe_ms": [round(probe_before * 1000, 3), round(probe_after * 1000, 3)],
        "rows": rows,
        "two_rollout_overlap_pct": overlap,
        "split": split,
        "long_unit_ns": long_rows,
        "goal_per_s": GOAL_PER_S,
        "meets_goal": rows["assign(unit)"]["median_per_s"] >= GOAL_PER_S
        and split["deviation_pp"] <= 0.1
        and not split["srm_mismatch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    busy = common.BusyMeter()
    result = measure(args.units, args.calls, args.repeats)
    result["machine"] = common.machine_info()
    result["busy"] = busy.finish()
    common.write_result(args.var_dir, "rollout_assignment", result)

    print(
        f"== rollout assignment, in-process, one thread ({args.calls:,} calls a round, best/median of {args.repeats})"
    )
    table = []
    for name, row in result["rows"].items():
        overlap = result["two_rollout_overlap_pct"].get(name.removeprefix("hash "), "")
        table.append([name, f"{row['best_per_s']:,}", f"{row['median_per_s']:,}", row["best_ns_per_call"], overlap])
    common.print_table(table, ["path", "best /s", "median /s", "ns/call", "both challengers % (1.00 = independent)"])
    split = result["split"]
    print(
        f"\n{split['units']:,} units at 10%: {split['challenger']:,} to the challenger "
        f"= {split['observed_share_pct']}% "
        f"(off by {split['deviation_pp']} pp); SRM chi2 {split['srm_chi2']}, p = {split['srm_p']}, "
        f"mismatch: {split['srm_mismatch']}"
    )
    print(f"long unit ids (ns/call): {result['long_unit_ns']}")
    print(f"speed probe before/after: {result['speed_probe_ms']} ms (0.85-1 ms when quiet); busy: {result['busy']}")
    verdict = "meets" if result["meets_goal"] else "MISSES"
    print(f"goal >= {GOAL_PER_S:,}/s (median single call), share within 0.1 pp, no SRM: {verdict}")
    if args.json:
        print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
