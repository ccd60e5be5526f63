"""forge_demo's monitoring step: a baseline, logged traffic that drifts, a monitor and a drift run; idempotent."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone

from forge_site.models import Job
from governance import monitoring_demo as demo
from governance.models import Baseline, InferenceBatch, Monitor
from models_registry.services import model_create
from tests.api.helpers import mlp_version

pytestmark = pytest.mark.django_db


def test_the_demo_step_seeds_a_drifting_week_once(engineer) -> None:
    model = model_create(name="credit-risk", owner=engineer)
    version = mlp_version(model, engineer, "1.0.0")  # the test MLP takes the demo's 32 features
    out = io.StringIO()
    now = timezone.now()
    demo.seed(stdout=out, now=now, days=2, rows_per_hour=80, baseline_rows=4000)
    baseline = Baseline.objects.get(version=version)
    assert baseline.status == "ready" and baseline.feature_names == demo.FEATURES
    assert InferenceBatch.objects.filter(version=version).count() == 48
    assert Monitor.objects.get(version=version).enabled
    run = Job.objects.get(kind="drift")
    drifted = {f["name"] for f in run.result["features"] if f["drifted"]}
    assert drifted == set(demo.DRIFTING), drifted  # the three that move, and none of the 29 that do not
    assert "flags" in out.getvalue()
    demo.seed(stdout=out, now=now, days=2, rows_per_hour=80, baseline_rows=4000)
    assert Baseline.objects.count() == 1 and "already has a baseline" in out.getvalue()
