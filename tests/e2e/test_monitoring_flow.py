"""The demo model's monitoring page in a real Chromium: drifted features flagged, charts drawn, no CSP violation."""

from __future__ import annotations

import io
import os

import pytest
from django.utils import timezone

from governance import monitoring_demo as demo
from models_registry.services import model_create
from tests.api.helpers import mlp_version
from tests.e2e.conftest import log_in
from tests.e2e.test_csp import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_demo_models_monitoring_page_flags_the_drifted_features(page, live_server, officer, engineer) -> None:
    model = model_create(name="credit-risk", owner=engineer)
    mlp_version(model, engineer, "1.0.0")  # takes the demo's 32 features
    demo.seed(stdout=io.StringIO(), now=timezone.now(), days=2, rows_per_hour=80, baseline_rows=4000)
    page.context.add_init_script(RECORD_VIOLATIONS)
    log_in(page, live_server, officer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/")
    badge = page.locator('a[data-badge="drift"]')
    assert badge.inner_text().startswith("drift 3/32")
    badge.click()
    page.wait_for_url("**/monitoring/")
    flagged = page.locator('#drift-table tr[data-drifted="true"]')
    assert sorted(flagged.evaluate_all("rows => rows.map(r => r.dataset.feature)")) == sorted(demo.DRIFTING)
    assert page.locator('#drift-table tr[data-drifted="false"]').count() == 29 + 1  # the rest, and the prediction
    page.wait_for_selector('#timeline-chart[data-drawn="true"]')
    page.wait_for_selector('.chart[data-chart="overlay-0"][data-drawn="true"]')
    assert page.locator('#fairness table[data-attribute="region"]').count() == 1
    assert page.evaluate("() => window.__cspViolations") == []
    if os.environ.get("FORGE_SCREENSHOTS"):
        page.screenshot(path=os.environ["FORGE_SCREENSHOTS"] + "/monitoring.png", full_page=True)
