"""What observability costs a served request: serving_observe() (Prometheus counters and histogram in
prometheus_client's multiprocess files), a JSON log line, and the console's per-request metrics.

    .venv/bin/python benchmarks/observe_cost.py [--calls 20000] [--repeats 7]

Anchor (issue 13): predict must sustain 1,500 req/s where a bare DRF view serves ~2,250 req/s, so all of Forge's
governance may cost at most 1/1500 - 1/2250 s = 222 µs of CPU per request; and at one connection Forge may add at
most 0.3 ms p50. One thread, in-process; the log line goes through a StreamHandler into /dev/null (formatting and
the write, not a disk). Also timed for context: the same counter and histogram in prometheus_client's in-memory
mode (what a single-process server would pay) and a plain-text log line. Rounds are interleaved
(common.interleaved); the figure is the median round, per call.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

BUDGET_US = (1 / 1500 - 1 / 2250) * 1e6  # 222 µs: a third of the bare view's throughput, per request
ONE_CONNECTION_US = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per timed round")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="forge-observe-bench-"))
    env = common.bench_env(var_dir)
    env["FORGE_METRICS_DIR"] = str(var_dir / "metrics")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("FORGE_METRICS_GROUP", None)
    common.django_setup(env)

    from prometheus_client import Counter, Histogram, values

    from forge_site.logs import JsonFormatter, current_request_id
    from forge_site.observability.metrics import SERVING_BUCKETS, http_observe, metrics_exposition, serving_observe

    # the same metrics in memory, for comparison (prometheus_client reads the value class at each metric's creation)
    multiprocess_class = values.ValueClass
    values.ValueClass = values.MutexValue
    memory_counter = Counter("bench_requests", "", ["rollout", "version", "arm", "outcome"], registry=None)
    memory_histogram = Histogram(
        "bench_latency", "", ["rollout", "version", "arm"], buckets=SERVING_BUCKETS, registry=None
    )
    values.ValueClass = multiprocess_class
    memory_ok = memory_counter.labels("7", "1.1.0", "challenger", "ok")
    memory_latency = memory_histogram.labels("7", "1.1.0", "challenger")

    sink = open(os.devnull, "w")  # noqa: SIM115
    json_handler, plain_handler = logging.StreamHandler(sink), logging.StreamHandler(sink)
    json_handler.setFormatter(JsonFormatter())
    plain_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    json_log, plain_log = logging.getLogger("bench.json"), logging.getLogger("bench.plain")
    for log, handler in ((json_log, json_handler), (plain_log, plain_handler)):
        log.handlers, log.propagate = [handler], False
        log.setLevel(logging.INFO)
    current_request_id.set("r7-b-1c2d3e-9f8a7b6c-0123456789")
    fields = {"rollout": 7, "version": "1.1.0", "arm": "challenger", "latency_ms": 1.734, "outcome": "ok"}

    latencies = [0.0008 + (i % 50) * 0.0002 for i in range(args.calls)]

    def observe() -> None:
        for latency in latencies:
            serving_observe(rollout_id=7, version="1.1.0", arm="challenger", latency_s=latency, error=False)

    def observe_in_memory() -> None:
        for latency in latencies:
            memory_ok.inc()
            memory_latency.observe(latency)

    def console() -> None:
        for latency in latencies:
            http_observe(method="GET", route="registry/", status=200, duration_s=latency)

    def json_line() -> None:
        for _ in latencies:
            json_log.info("predict", extra=fields)

    def plain_line() -> None:
        for _ in latencies:
            plain_log.info("predict rollout=7 version=1.1.0 arm=challenger latency_ms=1.734 outcome=ok")

    contenders = {
        "serving_observe() (multiprocess files)": observe,
        "same counter + histogram, in memory": observe_in_memory,
        "http_observe() (console middleware)": console,
        "JSON log line (JsonFormatter)": json_line,
        "plain log line": plain_line,
    }
    probe_before = common.speed_probe()
    meter = common.BusyMeter()
    times = common.interleaved(contenders, args.repeats)
    busy = meter.finish()
    probe_after = common.speed_probe()

    # what a scrape costs: 50 rollouts x 2 arms served here (per series: 16 buckets, sum, count and 2 counters)
    for rollout in range(50):
        for arm, version in (("champion", "1.0.0"), ("challenger", "1.1.0")):
            serving_observe(rollout_id=1000 + rollout, version=version, arm=arm, latency_s=0.002, error=False)
    scrapes = []
    for _ in range(20):
        started = time.perf_counter()
        body = metrics_exposition(include_workers=True)
        scrapes.append(time.perf_counter() - started)
    scrape_ms = statistics.median(scrapes) * 1000

    rows, results = [], {}
    for name, rounds in times.items():
        per_call_us = statistics.median(rounds) / args.calls * 1e6
        best_us = min(rounds) / args.calls * 1e6
        core_share = per_call_us * 1500 / 1e6
        results[name] = {"median_round_us_per_call": per_call_us, "best_round_us_per_call": best_us}
        rows.append(
            [name, f"{per_call_us:.2f}", f"{best_us:.2f}", f"{per_call_us / BUDGET_US:.2%}", f"{core_share:.2%}"]
        )
    common.print_table(rows, ["per call (one thread)", "µs/call", "best", "of 222 µs budget", "core at 1,500/s"])
    print(
        f"\n/metrics exposition with 100 served series ({len(body):,} bytes): {scrape_ms:.2f} ms median of 20"
        f"\nanchors: governance may cost <= {BUDGET_US:.0f} µs of CPU per request at 1,500 req/s, and <= "
        f"{ONE_CONNECTION_US:.0f} µs p50 at one connection (issue 13); speed probe {probe_before * 1000:.2f} / "
        f"{probe_after * 1000:.2f} ms; {busy}"
    )
    common.write_result(
        common.DEFAULT_VAR,
        "observe_cost",
        {
            "machine": common.machine_info(),
            "busy": busy,
            "calls": args.calls,
            "results": results,
            "scrape_ms": scrape_ms,
            "scrape_bytes": len(body),
        },
    )
    sink.close()


if __name__ == "__main__":
    main()
