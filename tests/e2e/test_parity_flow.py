"""In a real Chromium with a real worker: an engineer starts a parity run from the version page and reads its result."""

from __future__ import annotations

import re

import pytest

from forge_site.models import Job, JobStatus
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import model_create, version_create
from tests.api.helpers import temp_upload
from tests.conftest import wait_for
from tests.e2e.conftest import log_in
from tests.evaluation_models import mlp_with_onnx
from tests.torchscript_models import MLP_SPEC

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

SAMPLES = 500_000


def test_an_engineer_runs_parity_against_the_onnx_companion_and_sees_it_pass(
    page, live_server, celery_worker, engineer
):
    artifact, onnx = mlp_with_onnx(seed=3)
    model = model_create(name="credit-risk", owner=engineer)
    version = version_create(
        model=model,
        version="1.1.0",
        artifact=temp_upload("model.pt", artifact),
        onnx=temp_upload("model.onnx", onnx),
        input_spec=MLP_SPEC,
        created_by=engineer,
    )
    wait_for(lambda: ModelVersion.objects.get(pk=version.pk).status == VersionStatus.READY, timeout=90)

    log_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/registry/models/credit-risk/versions/1.1.0/")
    assert "No parity runs yet." in page.inner_text("#parity-runs")
    assert page.locator("#parity-form select[name='parity-reference']").input_value() == "onnx"
    page.fill("#id_parity-samples", str(SAMPLES))
    page.fill("#id_parity-batch_size", "64")
    page.fill("#id_parity-seed", "42")
    page.click("#start-parity")

    page.wait_for_url(re.compile(r"/registry/models/credit-risk/versions/1\.1\.0/runs/[0-9a-f-]{36}/$"))
    job = Job.objects.get(kind="parity")
    assert job.params["reference"]["kind"] == "onnx" and job.params["samples"] == SAMPLES
    assert page.locator("#run-live [role=progressbar]").is_visible()  # the page opens on the live progress
    assert page.locator("#cancel-job").is_visible()
    verdict = page.locator("#parity-verdict")
    verdict.wait_for(timeout=120_000)  # no reload here: htmx polls the progress and asks for a full refresh when done
    assert verdict.inner_text().startswith("PASS")
    page.locator("#parity-hist-0.js-plotly-plot").wait_for()
    assert page.locator(".js-plotly-plot .bars path").count() > 0  # plotly drew the histogram's bars
    assert page.locator("#cancel-job").count() == 0
    assert page.inner_text("#parity-seed") == "42"
    assert page.evaluate("typeof Plotly") == "object"  # served from static/vendor, no CDN

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result["passed"] is True
    assert job.result["reference"]["runtime"] == "onnxruntime"
    page.click("text=1.1.0 >> nth=0")  # the breadcrumb back to the version
    page.wait_for_url(re.compile(r"/versions/1\.1\.0/$"))
    assert "PASS" in page.inner_text("#parity-runs")
