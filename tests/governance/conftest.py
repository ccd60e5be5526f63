"""Governance fixtures: for reports, an officer's draft on a model with evidence; for monitoring, a ready version
with a prepared baseline, and rows to log against it."""

from __future__ import annotations

import gc
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import Baseline
from governance.tasks import prepare_baseline_now
from models_registry.services import model_create
from tests.api.helpers import mlp_version
from tests.governance.helpers import Evidenced, evidenced_model

# Two days ago at half past an hour: within the label join's lookback, and away from an hour's edge.
NOW = (datetime.now(UTC) - timedelta(days=2)).replace(minute=30, second=0, microsecond=0)


def table_rows(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """A small credit-like table: two numeric features, a categorical one, a score, a label and a region."""
    rng = np.random.default_rng(seed)
    a = rng.normal(shift, 1.0, n)
    b = rng.exponential(1.0, n)
    color = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south"], n)
    score = 1 / (1 + np.exp(-(a - 0.5 * b + (region == "south") * 0.8)))
    label = (rng.random(n) < score).astype(int)
    return {"a": a, "b": b, "color": color, "score": score, "default": label, "region": region}


def to_csv(columns: dict[str, np.ndarray]) -> bytes:
    names = list(columns)
    out = io.StringIO()
    out.write(",".join(names) + "\n")
    for i in range(len(columns[names[0]])):
        out.write(",".join(str(columns[n][i]) for n in names) + "\n")
    return out.getvalue().encode()


@pytest.fixture
def evidenced(engineer: Any, manager: Any) -> Evidenced:
    return evidenced_model(engineer=engineer, manager=manager)


@pytest.fixture(autouse=True)
def _free_uploads() -> Any:
    """Collect what a test left in reference cycles (test responses hold their request, and so its temporary upload
    files) now, so a later test that counts the upload folder does not see them vanish in the middle."""
    yield
    gc.collect()


@pytest.fixture
def version(engineer: Any) -> Any:
    model = model_create(name="credit-risk", owner=engineer)
    return mlp_version(model, engineer, "1.0.0")


@pytest.fixture
def make_baseline(engineer: Any, api_as: Callable[..., Any]) -> Callable[..., Baseline]:
    def make(version: Any, rows: int = 2000, seed: int = 1, **fields: str) -> Baseline:
        client = api_as(engineer)
        body = {
            "file": SimpleUploadedFile("baseline.csv", to_csv(table_rows(rows, seed))),
            "prediction": "score",
            "label": "default",
            "segments": "region",
            **fields,
        }
        response = client.post(
            f"/api/v1/models/{version.model.name}/versions/{version.version}/baseline/", body, format="multipart"
        )
        assert response.status_code == 202, response.content
        job = prepare_baseline_now(response.json()["id"])
        assert job is not None and job.status == "succeeded", job and job.error
        return Baseline.objects.get(version=version)

    return make


def json_rows(
    columns: dict[str, np.ndarray],
    start: datetime = NOW,
    prefix: str = "r",
    labels: bool = False,
    step: timedelta = timedelta(seconds=30),
) -> list[dict[str, Any]]:
    rows = []
    for i in range(len(columns["a"])):
        row: dict[str, Any] = {
            "request_id": f"{prefix}{i}",
            "timestamp": (start + i * step).isoformat(),
            "features": {"a": float(columns["a"][i]), "b": float(columns["b"][i]), "color": str(columns["color"][i])},
            "prediction": float(columns["score"][i]),
            "segment": {"region": str(columns["region"][i])},
        }
        if labels:
            row["label"] = int(columns["default"][i])
        rows.append(row)
    return rows
