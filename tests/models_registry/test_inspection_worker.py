"""Upload -> inspection on a real Celery worker -> ready or rejected."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from forge_site.models import AuditEvent, Job
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import model_create, version_create
from tests.conftest import wait_for
from tests.torchscript_models import GATED_SPEC, MLP_SPEC, TOKENS_SPEC, Gated, TokenBag, mlp_bytes, scripted_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def _temp_upload(name: str, data: bytes) -> SimpleUploadedFile:
    from models_registry.artifacts import HashedUploadedFile

    file = HashedUploadedFile(name, "application/octet-stream", len(data), None, None)
    file.write(data)
    file.seek(0)
    return file


def _finished(version: ModelVersion) -> ModelVersion | None:
    version.refresh_from_db()
    return version if version.status != VersionStatus.VALIDATING else None


@pytest.mark.parametrize(
    ("data", "spec", "outputs"),
    [
        (mlp_bytes(), MLP_SPEC, [[2, 2]]),
        (scripted_bytes(TokenBag()), TOKENS_SPEC, [[2, 3]]),
        (scripted_bytes(Gated()), GATED_SPEC, [[2, 2], [2, 4]]),
    ],
    ids=["mlp", "multi-input-int", "control-flow"],
)
def test_it_inspects_an_upload_and_marks_it_ready(celery_worker, engineer, data, spec, outputs):
    model = model_create(name="credit-risk", owner=engineer, risk_tier="high")
    version = version_create(
        model=model, version="1.0.0", artifact=_temp_upload("m.pt", data), input_spec=spec, created_by=engineer
    )
    done = wait_for(lambda: _finished(version), timeout=90)
    assert done.status == VersionStatus.READY, done.reason
    assert [o["shape"] for o in done.inspection["dry_run"]["outputs"]] == outputs
    assert done.inspection["parameters"] > 0
    assert "forward" in done.inspection["methods"]
    job = Job.objects.get(subject_id=str(version.pk))
    assert job.status == "succeeded" and job.device == "cpu" and job.worker_host
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[:3] == ["model.create", "version.upload", "job.queue"]
    assert {"job.start", "job.finish", "version.ready"} <= set(actions)


def test_it_rejects_a_model_that_does_not_fit_its_input_spec(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    wrong = {"inputs": [{"name": "x", "shape": [None, 7], "dtype": "float32"}]}
    version = version_create(
        model=model, version="1.0.0", artifact=_temp_upload("m.pt", mlp_bytes()), input_spec=wrong, created_by=engineer
    )
    done = wait_for(lambda: _finished(version), timeout=90)
    assert done.status == VersionStatus.REJECTED
    assert "dry run failed" in done.reason and "2x7" in done.reason
    assert Job.objects.get(subject_id=str(version.pk)).status == "failed"
