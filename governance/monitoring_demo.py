"""forge_demo's monitoring step (for settings FORGE_DEMO_STEPS, after the registry's): the credit-risk model gets a
baseline and a week of logged traffic that drifts.

`seed(*, stdout, now)` (settings FORGE_DEMO_STEPS) is idempotent: a version that already has a baseline is left
alone. The records it writes are written now; the logged inferences carry their own times over the past week.

The data follows the demo model's world (32 standardised application features). Over the last three days three
features move (income falls, utilisation and recent inquiries rise), so the monitoring page has something real to
flag. Predictions are the model's own: its TorchScript file is run by this command (a CLI process on a file the
demo built itself, never the web process) until baselines are scored by the job sandbox.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User

from governance.models import Baseline, Monitor
from governance.services.baselines import baseline_create
from governance.services.ingest import inferences_ingest
from governance.services.monitoring import drift_start, monitor_upsert
from governance.tasks import prepare_baseline_now, run_drift_now
from models_registry.models import ModelVersion, VersionStatus

MODEL = "credit-risk"
FEATURES = [
    "income",
    "debt_to_income",
    "credit_utilization",
    "num_recent_inquiries",
    "months_employed",
    "age",
    "num_open_accounts",
    "num_delinquencies",
    "loan_amount",
    "loan_term",
    "interest_rate",
    "savings_balance",
    "checking_balance",
    "mortgage_balance",
    "num_credit_cards",
    "oldest_account_months",
    "late_payments_12m",
    "bankruptcies",
    "collections",
    "installment_ratio",
    "revolving_balance",
    "home_value",
    "household_size",
    "education_years",
    "years_at_address",
    "num_dependents",
    "vehicle_loans",
    "student_loans",
    "overdrafts_12m",
    "payment_to_income",
    "credit_mix_score",
    "account_age_avg",
]
DRIFTING = {"income": -0.9, "credit_utilization": 0.8, "num_recent_inquiries": 1.1}
REGIONS = ["north", "south", "east", "west"]
AGE_BANDS = ["18-29", "30-49", "50+"]
BASELINE_ROWS = 4000
ROWS_PER_HOUR = 40
DAYS = 7


def applications(rng: np.random.Generator, rows: int, drift: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Standardised features (drift: per-row shift of the drifting features, 0..1), region and age band."""
    x = rng.standard_normal((rows, len(FEATURES)))
    if drift is not None:
        for name, shift in DRIFTING.items():
            x[:, FEATURES.index(name)] += shift * drift
    columns: dict[str, np.ndarray] = {name: x[:, i] for i, name in enumerate(FEATURES)}
    columns["region"] = rng.choice(REGIONS, rows, p=[0.3, 0.3, 0.25, 0.15])
    columns["age_band"] = np.where(
        x[:, FEATURES.index("age")] < -0.6,
        AGE_BANDS[0],
        np.where(x[:, FEATURES.index("age")] < 0.8, AGE_BANDS[1], AGE_BANDS[2]),
    )
    return columns


def scorer(artifact: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """The version's own P(default): its TorchScript file, loaded once, run on the features (softmax of 2 logits)."""
    import torch

    from governance.storage import artifact_local_copy

    with artifact_local_copy(artifact) as local:
        model = torch.jit.load(local, map_location="cpu")

    def score(columns: dict[str, np.ndarray]) -> np.ndarray:
        x = torch.as_tensor(np.column_stack([columns[name] for name in FEATURES]), dtype=torch.float32)
        with torch.inference_mode():
            return torch.softmax(model(x), dim=1)[:, 1].double().numpy()

    return score


def _csv(columns: dict[str, np.ndarray]) -> bytes:
    names = list(columns)
    out = io.StringIO()
    out.write(",".join(names) + "\n")
    rows = len(columns[names[0]])
    for i in range(rows):
        out.write(
            ",".join(f"{columns[n][i]:.6g}" if columns[n].dtype.kind == "f" else str(columns[n][i]) for n in names)
            + "\n"
        )
    return out.getvalue().encode()


def seed(
    *,
    stdout: TextIO,
    now: datetime,
    days: int = DAYS,
    rows_per_hour: int = ROWS_PER_HOUR,
    baseline_rows: int = BASELINE_ROWS,
) -> None:
    version = ModelVersion.objects.filter(model__name=MODEL, status=VersionStatus.READY).order_by("-created_at").first()
    if version is None:
        stdout.write(f"monitoring: no ready {MODEL} version; skipped\n")
        return
    if Baseline.objects.filter(version=version).exists():
        stdout.write(f"monitoring: {MODEL} {version.version} already has a baseline\n")
        return
    engineer = User.objects.filter(groups__name="ML engineers").order_by("pk").first()
    rng = np.random.default_rng(2024)
    score = scorer(version.artifact)
    reference = applications(rng, baseline_rows)
    reference["p_default"] = score(reference)
    reference["defaulted"] = (rng.random(baseline_rows) < reference["p_default"]).astype(int).astype(float)
    data = _csv(reference)
    with tempfile.NamedTemporaryFile(dir=settings.FORGE_UPLOAD_DIR, suffix=".csv") as handle:
        handle.write(data)
        handle.flush()
        job = baseline_create(
            version=version,
            path=Path(handle.name),
            filename="applications-2024q3-holdout.csv",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            actor=engineer,
            label="defaulted",
            prediction="p_default",
            segments=["region", "age_band"],
        )
    finished = prepare_baseline_now(str(job.pk))
    if finished is None or finished.status != "succeeded":
        stdout.write(f"monitoring: the baseline job did not succeed: {finished and finished.error}\n")
        return
    stdout.write(f"monitoring: {MODEL} {version.version} baseline of {baseline_rows} rows prepared\n")
    _log_traffic(version, rng, now, score, days, rows_per_hour)
    stdout.write(f"monitoring: {days} days of logged traffic ({days * 24 * rows_per_hour} rows) ingested\n")
    monitor_upsert(
        version=version,
        actor=engineer,
        enabled=True,
        interval_minutes=24 * 60,
        lookback_hours=24 * days,
        method="",
        threshold=None,
        drift_share=0.5,
        fairness_thresholds={},
    )
    Monitor.objects.filter(version=version).update(last_run_at=now)
    run = drift_start(version=version, actor=engineer, start=now - timedelta(days=days), end=now)
    result = run_drift_now(str(run.pk))
    if result is not None and result.status == "succeeded":
        drifted = [f["name"] for f in (result.result or {}).get("features", []) if f["drifted"]]
        stdout.write(f"monitoring: the drift run over those days flags {', '.join(drifted) or 'nothing'}\n")


def _log_traffic(
    version: ModelVersion,
    rng: np.random.Generator,
    now: datetime,
    score: Callable[[dict[str, np.ndarray]], np.ndarray],
    days: int,
    rows_per_hour: int,
) -> None:
    """Hourly batches over the past days; the three drifting features move over the last three sevenths of them,
    and labels (whether the applicant defaulted) are known for the rest."""
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    calm = hours * 4 // 7
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        progress = max(0.0, (hour - calm) / max(1, hours - calm))
        columns = applications(rng, rows_per_hour, drift=np.full(rows_per_hour, progress))
        scores = score(columns)
        outcomes = rng.random(rows_per_hour) < scores
        rows: list[dict[str, Any]] = []
        for i in range(rows_per_hour):
            row: dict[str, Any] = {
                "request_id": f"demo-{hour:03d}-{i:02d}",
                "timestamp": (moment + timedelta(seconds=int(i * 3600 / rows_per_hour))).isoformat(),
                "features": {name: round(float(columns[name][i]), 5) for name in FEATURES},
                "prediction": [round(1 - float(scores[i]), 6), round(float(scores[i]), 6)],
                "segment": {"region": str(columns["region"][i]), "age_band": str(columns["age_band"][i])},
                "meta": {"source": "forge_demo"},
            }
            if hour < calm:
                row["label"] = int(outcomes[i])
            rows.append(row)
        inferences_ingest(version=version, rows=rows, actor=None, source="demo")
