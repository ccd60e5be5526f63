"""In a real Chromium: an engineer uploads a TorchScript model and watches it turn ready; roles hold in the browser."""

from __future__ import annotations

import re

import pytest

from forge_site.models import AuditEvent
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import model_create, version_create
from tests.api.helpers import temp_upload
from tests.e2e.conftest import log_in
from tests.torchscript_models import MLP_SPEC, CreditMLP, mlp_bytes, scripted_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Slow the browser's upload so the progress bar is seen moving (loopback would finish in one event).
UPLOAD_BYTES_PER_S = 600 * 1024


def test_an_engineer_uploads_a_model_and_sees_it_turn_ready(page, live_server, celery_worker, engineer, tmp_path):
    artifact = tmp_path / "credit-risk.pt"
    artifact.write_bytes(scripted_bytes(CreditMLP(features=32, hidden=4096)))  # ~0.6 MiB: a few seconds throttled
    log_in(page, live_server, engineer)

    page.click("text=Register a model")
    page.fill("#id_name", "credit-risk")
    page.select_option("#id_risk_tier", "high")
    page.fill("#id_tags", "credit, retail")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/registry/models/credit-risk/$"))

    page.click("text=Upload a version")
    page.fill("#id_version", "1.0.0")
    page.set_input_files("#id_artifact", str(artifact))
    page.click("#use-example")  # the example spec is the MLP's: x of shape [any, 32], float32
    page.fill("#id_source_commit", "9f2c1ab")
    page.fill("#id_training_data", "s3://datasets/credit/2026-01")

    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BYTES_PER_S},
    )
    page.click("#upload-submit")
    progress = page.locator("#upload-progress")
    progress.wait_for(state="visible")
    page.wait_for_function(
        "() => { const v = Number(document.querySelector('#upload-progress').dataset.progress || 0);"
        " return v > 0 && v < 100; }",
        timeout=20_000,
    )
    seen = int(progress.get_attribute("data-progress") or 0)
    assert 0 < seen < 100
    assert page.locator("#upload-submit").is_disabled()

    page.wait_for_url(re.compile(r"/registry/models/credit-risk/versions/1\.0\.0/$"), timeout=60_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    badge = page.locator("#version-status")
    assert badge.inner_text().strip() in {"validating", "ready"}
    assert page.evaluate("typeof htmx") == "object"  # served from static/vendor, no CDN
    page.evaluate("window.forgeNoReload = true")  # survives only if the page is never reloaded
    page.wait_for_function(
        "() => document.querySelector('#version-status')?.textContent.trim() === 'ready'", timeout=90_000
    )
    assert page.locator("#inspection").is_visible()
    assert page.evaluate("window.forgeNoReload === true")  # htmx swapped the status in place
    assert "aten::linear" in page.content() or "Parameters" in page.inner_text("#inspection")

    version = ModelVersion.objects.get(model__name="credit-risk", version="1.0.0")
    assert version.status == VersionStatus.READY and version.size == artifact.stat().st_size
    assert version.source_commit == "9f2c1ab"
    assert page.locator("#sha256").inner_text().strip() == version.sha256


def test_an_upload_error_shows_next_to_its_field_and_keeps_the_form(page, live_server, engineer, tmp_path):
    model_create(name="credit-risk", owner=engineer)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a TorchScript archive" * 10)
    log_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/upload/")
    page.fill("#id_version", "1.0.0")
    page.set_input_files("#id_artifact", str(junk))
    page.fill("#id_input_spec", '{"inputs": [{"name": "x", "shape": [null, 32], "dtype": "float32"}]}')
    page.fill("#id_description", "keep me")
    page.click("#upload-submit")
    error = page.locator('[data-error-for="artifact"] li')
    error.wait_for(state="visible")
    assert error.inner_text().strip()
    assert page.url.endswith("/upload/")
    assert page.input_value("#id_description") == "keep me"
    assert not page.locator("#upload-submit").is_disabled()
    assert not ModelVersion.objects.exists()


def test_an_officer_reads_the_upload_in_the_audit_trail_and_a_manager_cannot_upload(
    page, live_server, engineer, officer, manager
):
    model = model_create(name="fraud-score", owner=engineer, risk_tier="critical")
    version_create(
        model=model,
        version="3.0.0",
        artifact=temp_upload("model.pt", mlp_bytes(1)),
        input_spec=MLP_SPEC,
        created_by=engineer,
    )
    assert AuditEvent.objects.filter(action="version.upload").exists()

    log_in(page, live_server, officer)
    assert page.locator("nav >> text=Audit trail").is_visible()
    page.click("nav >> text=Audit trail")
    page.fill("#id_action", "version.upload")
    page.click("form.filters button[type=submit]")
    row = page.locator("#audit-table tbody tr").first
    assert "version.upload" in row.inner_text() and "fraud-score:3.0.0" in row.inner_text()
    assert "erin" in row.inner_text()
    page.context.clear_cookies()

    log_in(page, live_server, manager)
    assert page.locator("nav >> text=Audit trail").count() == 0
    page.goto(f"{live_server.url}/registry/models/fraud-score/")
    assert page.locator("text=Upload a version").count() == 0
    response = page.goto(f"{live_server.url}/registry/models/fraud-score/upload/")
    assert response.status == 403
    assert "Your role may not open this page" in page.content()
    assert page.goto(f"{live_server.url}/audit/").status == 403
