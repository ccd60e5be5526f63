"""A baseline without predictions is scored by the version's own artifact, through the real job sandbox."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.drift.scoring import predictions_from_outputs
from governance.models import Baseline
from governance.reference import reference_for
from governance.tasks import prepare_baseline_now
from models_registry.sandbox.job_sandbox import HANDLERS, load_extra_handlers
from tests.api.helpers import mlp
from tests.governance.conftest import to_csv

pytestmark = pytest.mark.django_db


def test_a_baseline_that_fits_the_input_spec_is_scored_in_the_sandbox(version, engineer, api_as) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 32)).astype(np.float32)
    columns = {f"x{i:02d}": x[:, i] for i in range(32)}
    columns["group"] = rng.choice(["a", "b"], 300)
    response = api_as(engineer).post(
        "/api/v1/models/credit-risk/versions/1.0.0/baseline/",
        {"file": SimpleUploadedFile("b.csv", to_csv(columns)), "segments": "group"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job = prepare_baseline_now(response.json()["id"])
    assert job.status == "succeeded", job.error
    baseline = Baseline.objects.get()
    assert baseline.prediction_source == "scored" and baseline.prediction_column == "prediction"
    scoring = next(c for c in baseline.columns if c["role"] == "prediction")["scoring"]
    assert scoring["reading"] == "softmax of 2 logits, class 1" and scoring["rows"] == 300
    # The same model, run here on the same rows (the CSV's text, read back as float32), gives the same scores.
    model = torch.jit.load(io.BytesIO(mlp(len("1.0.0"))))
    texts = np.array([[float(f"{v}") for v in row] for row in x], dtype=np.float32)
    with torch.inference_mode():
        expected = torch.softmax(model(torch.from_numpy(texts)), dim=1)[:, 1].double().numpy()
    stored = reference_for(baseline).prepared()["prediction"].sorted
    np.testing.assert_allclose(stored, np.sort(expected), rtol=1e-6)
    assert baseline.fairness["group"]  # scored predictions feed the segment tallies


def test_outputs_become_one_prediction_per_row() -> None:
    assert predictions_from_outputs(np.array([[0.2], [0.9]]))[1] == "score"
    values, reading = predictions_from_outputs(np.array([[0.3, 0.7], [0.9, 0.1]]))
    assert reading == "probability of class 1" and values.tolist() == [0.7, 0.1]
    classes, reading = predictions_from_outputs(np.array([[1.0, 5.0, 2.0], [9.0, 0.0, 1.0]]))
    assert reading == "argmax class" and classes.tolist() == ["1", "0"]


def test_the_sandbox_takes_only_allow_listed_kinds_and_keeps_its_own() -> None:
    added = load_extra_handlers('{"score_baseline": "governance.drift.scoring:score_baseline"}')
    assert set(added) == {"score_baseline"} and "parity" in HANDLERS
    with pytest.raises(ValueError, match="built in"):
        load_extra_handlers('{"parity": "governance.drift.scoring:score_baseline"}')
    with pytest.raises(ValueError, match=r"package\.module:function"):
        load_extra_handlers('{"x": "governance.drift.scoring"}')
