"""Inference ingestion through a real Forge web process: rows per second and the web process's memory.

    .venv/bin/python benchmarks/drift_ingest.py                      # 1,000,000 rows x 20 features, and 10,000,000
    .venv/bin/python benchmarks/drift_ingest.py --sizes 200000 --features 20   # quicker

Goal (issue 12): >= 100,000 rows/s for Parquet, with the web process's memory flat; a 10-million-row file streamed.

What it does: a fresh SQLite database under var/bench/ingest/, an ML engineer with an API token, a model whose ready
version has a baseline of 100,000 rows (the features, a prediction, a label and a segment; prepared in-process by
the baseline job's body). Each file is written once (cached) as Parquet in row groups of 65,536 rows: request_id,
timestamp over 24 hours, the features, prediction, label for a third of the rows, and the segment. One gunicorn
sync worker serves; curl POSTs the file (`-F file=@…`, streamed from disk) to …/inferences/ while a thread samples
the worker's RSS every 10 ms. A 20,000-row file is sent first, so the worker has imported what ingestion uses.
Reported per size: wall time of the request, rows/s, the worker's RSS before, its peak during the request and the
growth, so a flat memory shows as the same peak at 1 M and 10 M rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from upload_memory import RssSampler

MODEL = "bench-ingest"
MIB = 1024**2


def write_rows(path: Path, rows: int, features: int, seed: int, baseline: bool = False) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    schema_written = None
    writer = None
    tmp = path.with_suffix(".tmp")
    try:
        for offset in range(0, rows, 65_536):
            n = min(65_536, rows - offset)
            columns: dict[str, object] = {}
            if not baseline:
                columns["request_id"] = pa.array([f"req-{offset + i}" for i in range(n)])
                columns["timestamp"] = pa.array(
                    [start + timedelta(seconds=(offset + i) * 86_400 / rows) for i in range(n)],
                    type=pa.timestamp("us", tz="UTC"),
                )
            for f in range(features):
                columns[f"f{f:02d}"] = rng.normal(0.1 if f < 3 and not baseline else 0.0, 1.0, n)
            columns["prediction"] = rng.random(n)
            label = (rng.random(n) < 0.3).astype(np.float64)
            if not baseline:
                label[rng.random(n) > 0.33] = np.nan
            columns["label"] = pa.array(label, from_pandas=True)
            columns["region"] = pa.array(rng.choice(["north", "south", "east", "west"], n))
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
                schema_written = table.schema
            writer.write_table(table.cast(schema_written))
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)
    return path


def setup(env: dict[str, str], var_dir: Path, features: int) -> str:
    """The engineer's token, with the model, its ready version and a prepared baseline."""
    common.fresh_sqlite(env)
    common.migrate(env)
    common.django_setup(env)
    from django.contrib.auth.models import Group, User

    from forge_site.roles import ROLE_GROUPS, Role
    from forge_site.tokens import token_create
    from governance.services.baselines import baseline_create
    from governance.tasks import prepare_baseline_now
    from models_registry.models import ModelVersion
    from models_registry.services import model_create, version_create, version_record_inspection
    from tests.api.helpers import temp_upload
    from tests.torchscript_models import MLP_SPEC, mlp_bytes

    user = User.objects.create_user("bench-engineer", password="x" * 20)
    user.groups.add(Group.objects.get_or_create(name=ROLE_GROUPS[Role.ENGINEER])[0])
    model = model_create(name=MODEL, owner=user)
    version: ModelVersion = version_create(
        model=model, version="1.0.0", artifact=temp_upload("m.pt", mlp_bytes(0)), input_spec=MLP_SPEC, created_by=user
    )
    version = version_record_inspection(version_id=version.pk, ok=True, inspection={"parameters": 1}, reason="")
    baseline = write_rows(var_dir / f"baseline-{features}.parquet", 100_000, features, seed=1, baseline=True)
    job = baseline_create(
        version=version,
        path=baseline,
        filename=baseline.name,
        sha256="0" * 64,
        size=baseline.stat().st_size,
        actor=user,
        label="label",
        prediction="prediction",
        segments=["region"],
    )
    finished = prepare_baseline_now(str(job.pk))
    assert finished is not None and finished.status == "succeeded", finished and finished.error
    _, plain = token_create(user=user, name="bench")
    return plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR / "ingest")
    parser.add_argument("--redis-url", default=common.DEFAULT_REDIS, help="where the version upload enqueues")
    args = parser.parse_args()
    var_dir = args.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    env = common.bench_env(var_dir, redis_url=args.redis_url)
    token = setup(env, var_dir, args.features)
    warmup = write_rows(var_dir / f"rows-20000-{args.features}.parquet", 20_000, args.features, seed=7)
    files = {n: write_rows(var_dir / f"rows-{n}-{args.features}.parquet", n, args.features, seed=n) for n in args.sizes}
    port = common.free_port()
    proc, worker = common.start_forge_server(env, port, log=var_dir / "server.log")
    url = f"http://127.0.0.1:{port}/api/v1/models/{MODEL}/versions/1.0.0/inferences/"
    results = []
    try:
        # One small file first: the worker imports pyarrow and the drift code on its first ingestion.
        subprocess.run(
            ["curl", "-sS", "-H", f"Authorization: Bearer {token}", "-F", f"file=@{warmup}", url],
            capture_output=True,
            check=True,
        )
        for rows, path in files.items():
            sampler = RssSampler(worker)
            sampler.start()
            time.sleep(0.5)
            before = max(rss for _, rss in sampler.samples)
            started = time.perf_counter()
            done = subprocess.run(
                ["curl", "-sS", "-H", f"Authorization: Bearer {token}", "-F", f"file=@{path}", url],
                capture_output=True,
                text=True,
                check=True,
            )
            elapsed = time.perf_counter() - started
            sampler.stop()
            sampler.join()
            body = json.loads(done.stdout)
            if body.get("accepted") != rows:
                raise RuntimeError(f"unexpected answer: {done.stdout[:500]}")
            peak = max(rss for _, rss in sampler.samples)
            results.append(
                {
                    "rows": rows,
                    "file_mib": round(path.stat().st_size / MIB, 1),
                    "seconds": round(elapsed, 2),
                    "rows_per_s": round(rows / elapsed),
                    "rss_before_mib": round(before / MIB, 1),
                    "rss_peak_mib": round(peak / MIB, 1),
                    "rss_growth_mib": round((peak - before) / MIB, 1),
                }
            )
            print(results[-1], flush=True)
    finally:
        common.stop(proc)
    common.print_table(
        [
            [
                r["rows"],
                r["file_mib"],
                r["seconds"],
                r["rows_per_s"],
                r["rss_before_mib"],
                r["rss_peak_mib"],
                r["rss_growth_mib"],
            ]
            for r in results
        ],
        ["rows", "file MiB", "s", "rows/s", "RSS before MiB", "RSS peak MiB", "growth MiB"],
    )
    common.write_result(
        var_dir.parent,
        "drift_ingest",
        {"machine": common.machine_info(), "features": args.features, "results": results},
    )


if __name__ == "__main__":
    main()
