"""What a rate-limit check costs per request: Forge's fixed-window MachineThrottle against DRF's SimpleRateThrottle.

    .venv/bin/python benchmarks/throttle_cost.py [--calls 2000] [--repeats 5] [--redis redis://127.0.0.1:6399/5]

Anchor (issue 13): at one connection, Forge may add at most 0.3 ms p50 over a bare DRF view that runs the model;
the machine scope's check is part of that budget. All throttles count in the same Redis (the `throttle` cache, on
loopback), one thread, one token. The machine scope sends its counts in batches (throttles.BatchedCounts); the
user scope, for comparison, makes one round trip per request, whatever the rate. DRF's throttle keeps the time of
every request of the window in a list it reads, trims and writes back on each request, so its cost is measured
with the list already holding 100, 1,000 and 6,000 entries (6,000: the machine scope's rate for one second).
Timed in interleaved rounds (common.interleaved); the figure is the median of the rounds' medians, per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

ANCHOR_MS = 0.3


class _User:
    pk = 7
    is_authenticated = True


class _Request:
    """What the throttles read from a DRF request: its user and its token."""

    def __init__(self, auth: Any) -> None:
        self.user = _User()
        self.auth = auth
        self.META = {"REMOTE_ADDR": "127.0.0.1"}


class _View:
    throttle_scope = "machine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6399/5")
    args = parser.parse_args()

    common.ensure_redis(args.redis)
    var_dir = Path(tempfile.mkdtemp(prefix="forge-throttle-bench-"))
    env = common.bench_env(var_dir, redis_url=args.redis)
    env["FORGE_CACHE_URL"] = args.redis
    env["FORGE_THROTTLE_MACHINE"] = "1000000000/s"  # never refuse: time the check, not the refusal
    env["FORGE_THROTTLE_USER"] = "1000000000/s"
    common.django_setup(env)

    from django.core.cache import caches
    from rest_framework.throttling import ScopedRateThrottle

    from forge_site.models import ApiToken
    from forge_site.throttles import MachineThrottle, UserThrottle

    cache = caches["throttle"]
    cache.clear()
    token = ApiToken(pk=11, prefix="bench")
    request = _Request(token)
    view = _View()
    forge = MachineThrottle()
    per_request = UserThrottle()
    console_view = object()  # a view without throttle_scope: the user scope, one round trip a request

    def drf_with_history(entries: int) -> Any:
        class Throttle(ScopedRateThrottle):
            THROTTLE_RATES = {"machine": "1000000000/day"}

            def throttle_success(self) -> bool:
                # DRF's own step, less the insert of this request's time: the list keeps its size between calls,
                # and each call still reads, trims and writes back the whole list, as DRF does.
                self.cache.set(self.key, self.history, self.duration)
                return True

        Throttle.cache = cache
        throttle = Throttle()
        key = f"throttle_machine_{_User.pk}-{entries}"
        throttle.get_cache_key = lambda request, view: key  # type: ignore[method-assign]
        now = time.time()
        cache.set(key, [now + 3600 - i * 1e-4 for i in range(entries)], 86400)
        return lambda: throttle.allow_request(request, view)

    def batch(fn: Any) -> Any:
        def run() -> None:
            for _ in range(args.calls):
                fn()

        return run

    contenders = {
        "forge MachineThrottle (batched fixed window)": batch(lambda: forge.allow_request(request, view)),
        "forge UserThrottle (a round trip each)": batch(lambda: per_request.allow_request(request, console_view)),
        "DRF SimpleRateThrottle, 100 in window": batch(drf_with_history(100)),
        "DRF SimpleRateThrottle, 1,000 in window": batch(drf_with_history(1000)),
        "DRF SimpleRateThrottle, 6,000 in window": batch(drf_with_history(6000)),
    }
    probe_before = common.speed_probe()
    meter = common.BusyMeter()
    times = common.interleaved(contenders, args.repeats)
    busy = meter.finish()
    probe_after = common.speed_probe()

    rows = []
    results: dict[str, Any] = {}
    for name, rounds in times.items():
        per_call_ms = statistics.median(rounds) / args.calls * 1000
        best_ms = min(rounds) / args.calls * 1000
        results[name] = {"median_round_ms_per_call": per_call_ms, "best_round_ms_per_call": best_ms}
        rows.append([name, f"{per_call_ms:.4f}", f"{best_ms:.4f}", f"{per_call_ms / ANCHOR_MS:.1%}"])
    common.print_table(rows, ["check (one thread, Redis on loopback)", "ms/call", "best", "of 0.3 ms budget"])
    print(
        f"\nanchor: Forge may add <= {ANCHOR_MS} ms p50 per request at one connection (issue 13); "
        f"speed probe {probe_before * 1000:.2f} / {probe_after * 1000:.2f} ms; {busy}"
    )
    common.write_result(
        common.DEFAULT_VAR,
        "throttle_cost",
        {"machine": common.machine_info(), "busy": busy, "calls": args.calls, "results": results},
    )
    cache.clear()


if __name__ == "__main__":
    main()
