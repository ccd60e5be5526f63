"""Runs under the MLflow venv (not Forge's): registers the benchmark's models and versions with MlflowClient.

    var/mlflow-venv/bin/python benchmarks/mlflow_populate.py sqlite:///…/mlflow.db plan.json

plan.json: {"models": [{"name": …, "description": …, "tags": {…}, "versions": N, "aliases": {"champion": v}}]}.
Uses the SQLAlchemy store in-process (the same store the server uses), so populating takes minutes, not hours.
Prints one JSON line: how many models and versions exist and how long it took.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    uri, plan_path = sys.argv[1], Path(sys.argv[2])
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    plan = json.loads(plan_path.read_text())
    started = time.perf_counter()
    existing = {m.name for m in client.search_registered_models(max_results=1000)}
    versions = 0
    for n, model in enumerate(plan["models"]):
        name = model["name"]
        if name in existing:
            continue
        client.create_registered_model(name, tags=model["tags"], description=model["description"])
        for v in range(1, model["versions"] + 1):
            client.create_model_version(
                name,
                source=f"s3://bench-artifacts/{name}/{v}/model",
                tags={"stage": "candidate" if v % 3 else "baseline"},
                description=f"Version {v} of {name}.",
                await_creation_for=0,
            )
            versions += 1
        for alias, version in model["aliases"].items():
            client.set_registered_model_alias(name, alias, str(version))
        if n % 100 == 0:
            print(f"  … {n} models, {versions} versions, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(json.dumps({"created_versions": versions, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
