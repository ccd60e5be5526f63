"""The monitoring page and the drift badge on the registry's pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from forge_site.models import Job
from governance.tasks import run_drift_now
from tests.governance.conftest import json_rows, table_rows

pytestmark = pytest.mark.django_db
PAGE = "/governance/models/credit-risk/versions/1.0.0/monitoring/"


@pytest.fixture
def monitored(version, make_baseline, engineer, api_as):
    make_baseline(version)
    start = timezone.now() - timedelta(hours=30)
    rows = json_rows(table_rows(500, 41, shift=1.0), start=start, step=timedelta(minutes=3))
    response = api_as(engineer).post(
        "/api/v1/models/credit-risk/versions/1.0.0/inferences/", {"rows": rows}, format="json"
    )
    assert response.status_code == 201
    return version


def drifted_features(html: str) -> set[str]:
    return set(re.findall(r'data-feature="([^"]+)" data-drifted="true"', html))


def test_the_page_flags_drifted_features_from_sketches_before_any_run(monitored, client, officer) -> None:
    client.force_login(officer)
    html = client.get(PAGE).content.decode()
    assert "a" in drifted_features(html)
    assert 'id="timeline-chart"' in html and 'id="overlay-0"' in html  # figures as json_script
    assert "Fairness by segment" in html and 'data-attribute="region"' in html
    assert "Run drift now" not in html  # officers read; engineers run


def test_an_engineer_runs_drift_from_the_page_and_the_badge_shows_the_verdict(monitored, client, engineer) -> None:
    client.force_login(engineer)
    response = client.post(PAGE + "drift/", {"days": "7", "submission": "t1"})
    job = Job.objects.get(kind="drift")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    again = client.post(PAGE + "drift/", {"days": "7", "submission": "t1"})  # the same form posted twice
    assert again.status_code == 302 and Job.objects.filter(kind="drift").count() == 1
    assert run_drift_now(str(job.pk)).status == "succeeded"
    html = client.get(PAGE).content.decode()
    assert "latest run" in html and "a" in drifted_features(html)
    model_page = client.get("/registry/models/credit-risk/").content.decode()
    badge = re.search(
        r'<a class="badge badge-ext badge-(\w+)" href="([^"]+)"[^>]*data-badge="drift">([^<]+)</a>', model_page
    )
    assert badge is not None
    level, url, label = badge.groups()
    assert url == PAGE and label.startswith("drift ") and level in ("warn", "bad")
    version_page = client.get("/registry/models/credit-risk/versions/1.0.0/").content.decode()
    assert 'data-badge="drift"' in version_page and f'href="{PAGE}">Monitoring</a>' in version_page


def test_a_version_without_a_baseline_says_how_to_add_one(version, client, manager) -> None:
    client.force_login(manager)
    html = client.get(PAGE).content.decode()
    assert 'id="no-baseline"' in html and "/baseline/" in html
    assert 'data-badge="drift"' not in client.get("/registry/models/credit-risk/").content.decode()
