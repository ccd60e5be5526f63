"""Registry pages in a real Chromium: numbers that never break mid-digit, the evidence URL opened directly, retiring
a version from its page. Set FORGE_SCREENSHOTS=<folder> to keep a screenshot of each page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models_registry.models import ModelVersion
from models_registry.services import model_create
from tests.api.helpers import mlp_version
from tests.e2e.conftest import log_in
from tests.evidence_results import evaluation_job, parity_result

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    folder = os.environ.get("FORGE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def version(engineer):
    model = model_create(name="credit-risk", owner=engineer)
    return mlp_version(model, engineer, "1.1.0", onnx=True)


@pytest.mark.parametrize("width", [1280, 760])
def test_worst_rows_wrap_between_values_never_inside_one(page, live_server, engineer, version, width):
    job = evaluation_job(version, "parity", result=parity_result(noise=0.05))
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/versions/1.1.0/runs/{job.pk}/")
    values = page.locator(".worst-rows .value")
    assert values.count() >= 2 * 2 * 5  # rows x (candidate, reference) x 2 columns
    broken = page.evaluate(
        "() => [...document.querySelectorAll('.worst-rows .value, .worst-rows td.num')]"
        ".filter(el => el.getClientRects().length !== 1).map(el => el.textContent)"
    )
    assert broken == [], f"numbers broken over two lines: {broken}"
    _shot(page, f"worst-rows-{width}")


def test_the_evidence_url_opened_directly_shows_the_styled_version_page(page, live_server, engineer, version):
    evaluation_job(version, "parity", result=parity_result())
    log_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/versions/1.1.0/evidence/")
    assert page.url.endswith("/registry/models/credit-risk/versions/1.1.0/#evidence-section")
    assert page.locator("header.topbar").is_visible() and page.locator("#evidence").is_visible()
    card_border = page.evaluate("() => getComputedStyle(document.querySelector('#evidence')).borderTopStyle")
    assert card_border != "none"  # styled by forge.css, not a bare partial
    _shot(page, "evidence-direct")


def test_an_engineer_retires_a_version_from_its_page(page, live_server, engineer, version):
    log_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/versions/1.1.0/")
    page.click("#retire summary")
    page.fill("#id_retire-reason", "Superseded by 1.2.0; fairness finding on segment EU.")
    page.click("#retire-submit")  # without the confirmation box: the browser refuses to submit
    assert ModelVersion.objects.get(pk=version.pk).retired_at is None
    _shot(page, "retire-form")
    page.check("#id_retire-confirm")
    page.click("#retire-submit")
    page.locator("#retired-notice").wait_for()
    assert "Superseded by 1.2.0" in page.inner_text("#retired-notice")
    assert page.locator("#version-retired").is_visible() and page.locator("#start-parity").count() == 0
    assert ModelVersion.objects.get(pk=version.pk).retired_reason.startswith("Superseded")
    _shot(page, "retired-version")
    page.goto(f"{live_server.url}/registry/")
    assert page.locator("#model-table .badge-retired, table .badge-retired").count() >= 1
    _shot(page, "registry-list-retired")
