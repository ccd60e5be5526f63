"""parity_start / benchmark_start: what they accept, what they refuse, and what the queued job records."""

from __future__ import annotations

from typing import Any

import pytest

from forge_site.models import AuditEvent, Job
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.selectors import benchmark_runs, version_evaluations
from models_registry.services import RegistryError, benchmark_start, model_create, parity_start, version_create
from tests.models_registry.test_services import ready_version, upload
from tests.torchscript_models import GATED_SPEC, Gated, mlp_bytes, scripted_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(engineer: Any) -> RegisteredModel:
    return model_create(name="credit-risk", owner=engineer)


@pytest.fixture
def v1(model: RegisteredModel, engineer: Any) -> ModelVersion:
    return ready_version(model, "1.0.0", 0, engineer)


@pytest.fixture
def v2(model: RegisteredModel, engineer: Any) -> ModelVersion:
    return ready_version(model, "2.0.0", 1, engineer, parent="1.0.0")


def refusal(call: Any, **kwargs: Any) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        call(**kwargs)
    return info.value


def test_a_parity_request_is_queued_on_the_gpu_queue_with_its_validated_parameters(v1, v2, engineer):
    job = parity_start(
        version=v2,
        actor=engineer,
        reference={"kind": "version", "version": "1.0.0", "ignored": "x"},
        samples="500",
        batch_size=50,
        rtol="1e-4",
        seed=3,
    )
    assert (job.kind, job.queue, job.task_name, job.status) == ("parity", "gpu", "models_registry.run_parity", "queued")
    assert job.subject_id == str(v2.pk) and job.subject_label == "credit-risk:2.0.0"
    assert job.params["reference"] == {"kind": "version", "version": "1.0.0", "version_id": v1.pk, "sha256": v1.sha256}
    assert (job.params["samples"], job.params["batch_size"], job.params["seed"]) == (500, 50, 3)
    assert job.params["rtol"] == 1e-4 and job.params["atol"] is None
    assert job.params["time_limit_s"] == 900 and job.params["sha256"] == v2.sha256
    event = AuditEvent.objects.get(action="job.queue", object_id=str(job.pk))
    assert event.actor_label == "erin" and event.after["params"]["reference"]["version"] == "1.0.0"
    assert list(version_evaluations(version=v2, kind="parity")) == [job]
    assert not version_evaluations(version=v2, kind="benchmark").exists()
    small = parity_start(version=v2, actor=engineer, reference={"kind": "version", "version": "1.0.0"}, samples=8)
    assert small.params["batch_size"] == 8  # the default batch of 64 is cut to the 8 samples asked for


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"reference": {"kind": "magic"}}, "reference", 'reference must be {"kind": "onnx"}'),
        ({"reference": "onnx"}, "reference", "reference must be"),
        ({"reference": {"kind": "onnx"}}, "reference", "has no ONNX companion"),
        ({"reference": {"kind": "version", "version": "9.9.9"}}, "reference.version", "no version '9.9.9'"),
        ({"reference": {"kind": "version", "version": "2.0.0"}}, "reference.version", "its own reference"),
        ({"reference": {"kind": "device", "device": "tpu"}}, "reference.device", "cpu, cuda or cuda:N"),
        ({"reference": {"kind": "device", "dtype": "int8"}}, "reference.dtype", "float32, float16"),
        (
            {"reference": {"kind": "device", "device": "cpu", "dtype": "float32"}, "device": "cpu"},
            "reference",
            "the same computation twice proves nothing",
        ),
        (  # auto is cpu on a worker without a GPU: refused before it is queued, not failed after
            {"reference": {"kind": "device", "device": "cpu", "dtype": "float32"}},
            "reference",
            "the candidate's device auto is cpu on a worker without a GPU",
        ),
        (
            {
                "reference": {"kind": "device", "device": "cuda:0", "dtype": "float16"},
                "device": "cuda",
                "dtype": "float16",
            },
            "reference",
            "proves nothing",
        ),
        ({"samples": 0}, "samples", "between 1"),
        ({"batch_size": 0}, "batch_size", "between 1 and 65,536"),
        ({"samples": "lots"}, "samples", "whole number"),
        ({"samples": True}, "samples", "whole number"),
        ({"rtol": -1}, "rtol", "between 0"),
        ({"atol": float("nan")}, "atol", "between 0"),
        ({"atol": "tiny"}, "atol", "must be a number"),
        ({"device": "gpu"}, "device", "auto, cpu, cuda"),
        ({"dtype": "float8"}, "dtype", "one of float32"),
        ({"time_limit_s": 10**6}, "time_limit_s", "between 1"),
    ],
)
def test_parity_requests_that_cannot_run_are_refused_with_the_field_at_fault(v1, v2, engineer, changes, field, words):
    request = {"reference": {"kind": "version", "version": "1.0.0"}, **changes}
    error = refusal(parity_start, version=v2, actor=engineer, **request)
    assert error.field == field
    assert words in error.message
    assert not Job.objects.filter(kind="parity").exists()


def test_parity_needs_a_ready_version_and_a_ready_reference_with_the_same_inputs(model, v1, engineer):
    validating = version_create(
        model=model,
        version="3.0.0",
        artifact=upload(mlp_bytes(3)),
        input_spec={"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]},
        created_by=engineer,
    )
    error = refusal(parity_start, version=validating, actor=engineer, reference={"kind": "onnx"})
    assert (error.status, error.code) == (409, "not_ready") and "validating" in error.message

    error = refusal(parity_start, version=v1, actor=engineer, reference={"kind": "version", "version": "3.0.0"})
    assert (error.field, error.code) == ("reference.version", "not_ready")

    gated = version_create(
        model=model,
        version="4.0.0",
        artifact=upload(scripted_bytes(Gated())),
        input_spec=GATED_SPEC,
        created_by=engineer,
    )
    ModelVersion.objects.filter(pk=gated.pk).update(status="ready")
    error = refusal(parity_start, version=v1, actor=engineer, reference={"kind": "version", "version": "4.0.0"})
    assert error.code == "incompatible" and "x [None, 4] float32" in error.message


def test_a_benchmark_request_normalises_batch_sizes_and_keeps_its_stability_rule(v1, engineer):
    job = benchmark_start(version=v1, actor=engineer, batch_sizes="64, 1 8 8", threads=2, stability_pct=5)
    assert (job.kind, job.queue, job.task_name) == ("benchmark", "gpu", "models_registry.run_benchmark")
    assert job.params["batch_sizes"] == [1, 8, 64]
    assert (job.params["device"], job.params["dtype"], job.params["threads"]) == ("auto", "float32", 2)
    assert (job.params["warmup"], job.params["window_ms"], job.params["stability_pct"]) == (10, 500.0, 5.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_sizes": []}, "batch_sizes"),
        ({"batch_sizes": list(range(1, 20))}, "batch_sizes"),
        ({"batch_sizes": [0]}, "batch_sizes"),
        ({"batch_sizes": [1, "x"]}, "batch_sizes"),
        ({"batch_sizes": {"a": 1}}, "batch_sizes"),
        ({"threads": 0}, "threads"),
        ({"warmup": -1}, "warmup"),
        ({"window_ms": 1}, "window_ms"),
        ({"stability_pct": 0}, "stability_pct"),
        ({"time_cap_s": 0}, "time_cap_s"),
        ({"device": "cuda:x"}, "device"),
    ],
)
def test_benchmark_requests_that_cannot_run_are_refused(v1, engineer, changes, field):
    error = refusal(benchmark_start, version=v1, actor=engineer, **changes)
    assert error.field == field
    assert not Job.objects.filter(kind="benchmark").exists()


def test_benchmark_runs_for_a_compare_keep_the_order_asked_and_drop_foreign_or_unfinished_ids(model, v1, v2, engineer):
    first = benchmark_start(version=v1, actor=engineer)
    second = benchmark_start(version=v2, actor=engineer)
    queued = benchmark_start(version=v2, actor=engineer)
    other_model = model_create(name="other", owner=engineer)
    foreign = benchmark_start(version=ready_version(other_model, "1.0.0", 5, engineer), actor=engineer)
    Job.objects.filter(pk__in=[first.pk, second.pk, foreign.pk]).update(status="succeeded")

    asked = [str(second.pk), "not-a-uuid", str(queued.pk), str(foreign.pk), str(first.pk)]
    assert benchmark_runs(model=model, job_ids=asked) == [(second, "2.0.0"), (first, "1.0.0")]
    assert benchmark_runs(model=model) == [(second, "2.0.0"), (first, "1.0.0")]  # the latest first


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        (("auto", "float32"), ("cpu", "float64")),  # the form's default: a float64 reference
        (("cpu", "float32"), ("cuda", "float32")),
        (("cuda:1", "float16"), ("cuda:0", "float16")),
        (("auto", "bfloat16"), ("cpu", "float32")),
    ],
)
def test_a_device_reference_that_differs_from_the_candidate_is_queued(v1, v2, engineer, candidate, reference):
    job = parity_start(
        version=v2,
        actor=engineer,
        reference={"kind": "device", "device": reference[0], "dtype": reference[1]},
        device=candidate[0],
        dtype=candidate[1],
    )
    assert job.params["reference"] == {"kind": "device", "device": reference[0], "dtype": reference[1]}
