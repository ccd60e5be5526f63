"""Parity and benchmark runs through the API: starting them (202 + Location), listing them, comparing benchmarks,
and the error shape for every kind of bad request."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from forge_site.models import AuditEvent, Job, JobStatus
from forge_site.tokens import token_create
from models_registry.models import ModelVersion
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of, mlp_version
from tests.evidence_results import benchmark_result, evaluation_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(engineer):
    return model_create(name="credit-risk", owner=engineer)


@pytest.fixture
def versions(model, engineer) -> dict[str, ModelVersion]:
    return {
        "1.0.0": mlp_version(model, engineer, "1.0.0"),
        "1.1.0": mlp_version(model, engineer, "1.1.0", onnx=True),
    }


@pytest.fixture
def client(engineer) -> APIClient:
    return bearer_client(engineer)


PARITY = "/api/v1/models/credit-risk/versions/1.1.0/parity/"
BENCH = "/api/v1/models/credit-risk/versions/1.1.0/benchmarks/"


def _runs(kind: str) -> list[Job]:
    return list(Job.objects.filter(kind=kind).order_by("created_at"))


# --- starting runs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"kind": "onnx"}, {"kind": "onnx"}),
        ({"kind": "version", "version": "1.0.0"}, {"kind": "version", "version": "1.0.0"}),
        ({"kind": "device", "device": "cuda", "dtype": "float16"}, {"kind": "device", "device": "cuda"}),
    ],
)
def test_an_engineer_starts_a_parity_run_against_each_kind_of_reference(
    client, versions, engineer, reference, expected
):
    body = {"reference": reference, "samples": 512, "batch_size": 32, "seed": 7, "rtol": 1e-4, "atol": 1e-6}
    response = client.post(PARITY, body, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(kind="parity")
    assert response["Location"] == f"/api/v1/jobs/{job.pk}/"
    out = response.json()
    assert out["id"] == str(job.pk) and out["status"] == "queued" and out["kind"] == "parity"
    assert out["subject"] == {
        "type": "models_registry.modelversion",
        "id": str(versions["1.1.0"].pk),
        "label": job.subject_label,
    }
    assert out["created_by"] == engineer.username
    params = out["params"]
    assert expected.items() <= params["reference"].items()
    assert (params["samples"], params["batch_size"], params["seed"], params["rtol"], params["atol"]) == (
        512,
        32,
        7,
        1e-4,
        1e-6,
    )
    assert job.queue == "gpu" and job.params == params
    assert AuditEvent.objects.filter(action="job.queue", object_id=str(job.pk), actor=engineer).exists()


def test_a_parity_run_takes_the_optional_device_dtype_fallback_and_time_limit(client, versions):
    body = {
        "reference": {"kind": "onnx"},
        "device": "cuda",
        "dtype": "float16",
        "allow_fallback": True,
        "time_limit_s": 120,
    }
    response = client.post(PARITY, body, format="json")
    assert response.status_code == 202, response.content
    params = response.json()["params"]
    assert (params["device"], params["dtype"], params["allow_fallback"], params["time_limit_s"]) == (
        "cuda",
        "float16",
        True,
        120,
    )


def test_an_engineer_starts_a_benchmark(client, versions):
    body = {"batch_sizes": [64, 1, 8], "device": "cpu", "dtype": "float32", "threads": 2, "warmup": 3, "time_cap_s": 5}
    response = client.post(BENCH, body, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(kind="benchmark")
    assert response["Location"] == f"/api/v1/jobs/{job.pk}/"
    params = response.json()["params"]
    assert params["batch_sizes"] == [1, 8, 64]
    assert (params["device"], params["threads"], params["warmup"], params["time_cap_s"]) == ("cpu", 2, 3, 5.0)


def test_a_retried_request_with_the_same_idempotency_key_gets_the_first_job(client, versions):
    body = {"reference": {"kind": "onnx"}, "samples": 512, "batch_size": 64}
    queued = AuditEvent.objects.filter(action="job.queue").count()
    first = client.post(PARITY, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-7f3a")
    again = client.post(PARITY, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-7f3a")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    assert len(_runs("parity")) == 1
    assert AuditEvent.objects.filter(action="job.queue").count() == queued + 1
    other = client.post(PARITY, {**body, "samples": 1024}, format="json", HTTP_IDEMPOTENCY_KEY="retry-7f3a")
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_key_reused"
    assert first.json()["id"] in error_of(other)["message"]
    bench = client.post(BENCH, {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-7f3a")  # another kind, same key
    assert bench.status_code == 409 and _runs("benchmark") == []
    assert client.post(PARITY, body, format="json").json()["id"] != first.json()["id"]  # no key: a new run


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "caf\u00e9", "tab\tkey"])
def test_a_malformed_idempotency_key_is_refused_before_anything_starts(client, versions, key):
    response = client.post(PARITY, {"reference": {"kind": "onnx"}}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and error_of(response)["field"] == "Idempotency-Key"
    assert _runs("parity") == []


def test_left_out_settings_take_the_service_defaults(client, versions):
    assert client.post(BENCH, {}, format="json").status_code == 202
    assert client.post(PARITY, {"reference": {"kind": "onnx"}}, format="json").status_code == 202
    bench, parity = _runs("benchmark")[0].params, _runs("parity")[0].params
    assert bench["batch_sizes"] == [1, 8, 64] and bench["device"] == "auto" and bench["dtype"] == "float32"
    assert parity["samples"] == 1024 and parity["batch_size"] == 64 and parity["seed"] == 0
    assert parity["rtol"] is None and parity["atol"] is None


# --- listing runs ----------------------------------------------------------------------------------------------------


def test_it_lists_a_versions_runs_of_each_kind_newest_first(client, versions, officer):
    older = evaluation_job(versions["1.1.0"], "parity")
    newer = evaluation_job(versions["1.1.0"], "parity", status=JobStatus.RUNNING)
    evaluation_job(versions["1.0.0"], "parity")  # another version's
    bench = evaluation_job(versions["1.1.0"], "benchmark", result=benchmark_result(p50_ms={1: 0.2}))
    listed = bearer_client(officer).get(PARITY)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 2 and [job["id"] for job in body["results"]] == [str(newer.pk), str(older.pk)]
    assert {"next", "previous"} <= set(body)
    benchmarks = bearer_client(officer).get(BENCH).json()
    assert [job["id"] for job in benchmarks["results"]] == [str(bench.pk)]
    assert benchmarks["results"][0]["result"]["results"][0]["batch_size"] == 1


def test_listing_the_runs_of_a_missing_version_is_404(client, versions):
    response = client.get("/api/v1/models/credit-risk/versions/9.9.9/parity/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


# --- bad requests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reference"),
        ({"reference": "onnx"}, "reference"),
        ({"reference": {"kind": "tensorrt"}}, "reference.kind"),
        ({"reference": {"kind": "version"}}, "reference.version"),
        ({"reference": {"kind": "version", "version": 100}}, "reference.version"),
        ({"reference": {"kind": "device"}}, "reference.device"),
        ({"reference": {"kind": "device", "device": "cuda", "dtype": "int8"}}, "reference.dtype"),
        ({"reference": {"kind": "onnx", "path": "/etc/passwd"}}, "reference.path"),
        ({"reference": {"kind": "onnx"}, "samples": "1024"}, "samples"),
        ({"reference": {"kind": "onnx"}, "samples": 10.5}, "samples"),
        ({"reference": {"kind": "onnx"}, "samples": 0}, "samples"),
        ({"reference": {"kind": "onnx"}, "batch_size": True}, "batch_size"),
        ({"reference": {"kind": "onnx"}, "rtol": "1e-4"}, "rtol"),
        ({"reference": {"kind": "onnx"}, "atol": -1}, "atol"),
        ({"reference": {"kind": "onnx"}, "allow_fallback": "yes"}, "allow_fallback"),
        ({"reference": {"kind": "onnx"}, "sampels": 10}, "sampels"),
    ],
)
def test_it_refuses_a_malformed_parity_request_naming_the_field(client, versions, body, field):
    response = client.post(PARITY, body, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["field"] == field, error
    assert error["message"]
    assert not Job.objects.filter(kind="parity").exists()


@pytest.mark.parametrize(
    ("body", "status", "field", "code"),
    [
        # Valid by the schema, refused by what is stored (404, 409) or by the whole request (422): never a 400.
        ({"reference": {"kind": "version", "version": "7.0.0"}}, 404, "reference.version", "not_found"),
        ({"reference": {"kind": "version", "version": "1.1.0"}}, 422, "reference.version", "same_as_candidate"),
        (
            {"reference": {"kind": "device", "device": "cpu", "dtype": "float32"}, "device": "cpu"},
            422,
            "reference",
            "same_as_candidate",
        ),
        (  # the default candidate device, auto, is cpu on a worker without a GPU
            {"reference": {"kind": "device", "device": "cpu", "dtype": "float32"}},
            422,
            "reference",
            "same_as_candidate",
        ),
        # Outside the schema: 400, with the field's limit.
        ({"reference": {"kind": "onnx"}, "samples": 10_000_000}, 400, "samples", "max_value"),
        ({"reference": {"kind": "onnx"}, "device": "tpu"}, 400, "device", "invalid"),
        ({"reference": {"kind": "onnx"}, "device": "CPU"}, 400, "device", "invalid"),
        ({"reference": {"kind": "onnx", "version": "1.0.0"}}, 400, "reference.version", "unknown_field"),
        ({"reference": {"kind": "version", "version": " 1.0.0"}}, 400, "reference.version", "invalid"),
    ],
)
def test_refusals_keep_their_field_and_code_with_the_status_their_cause_gives(
    client, versions, body, status, field, code
):
    response = client.post(PARITY, body, format="json")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert (error["field"], error["code"]) == (field, code)
    assert not Job.objects.filter(kind="parity").exists()


def test_parity_against_onnx_needs_an_onnx_companion(client, versions):
    response = client.post(
        "/api/v1/models/credit-risk/versions/1.0.0/parity/", {"reference": {"kind": "onnx"}}, format="json"
    )
    assert response.status_code == 409  # the request is valid; the version lacks the companion
    error = error_of(response)
    assert (error["code"], error["field"]) == ("no_onnx", "reference")
    assert "ONNX" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"batch_sizes": "1,8,64"}, "batch_sizes"),
        ({"batch_sizes": []}, "batch_sizes"),
        ({"batch_sizes": [1, "8"]}, "batch_sizes"),
        ({"batch_sizes": [1, 0]}, "batch_sizes"),
        ({"batch_sizes": [1, 8], "threads": "2"}, "threads"),
        ({"batch_sizes": [1], "window_ms": 1}, "window_ms"),
        ({"batch_sizes": [1], "dtype": "int64"}, "dtype"),
        ({"batch_sizes": [1], "batch": 5}, "batch"),
    ],
)
def test_it_refuses_a_malformed_benchmark_request_naming_the_field(client, versions, body, field):
    response = client.post(BENCH, body, format="json")
    assert response.status_code == 400, response.content
    assert error_of(response)["field"] == field
    assert not Job.objects.filter(kind="benchmark").exists()


def test_a_list_items_error_says_which_item(client, versions):
    message = error_of(client.post(BENCH, {"batch_sizes": [1, "8"]}, format="json"))["message"]
    assert message.startswith("batch_sizes: item 2:")


def test_malformed_json_and_other_media_types_get_the_error_shape(client, versions):
    broken = client.generic("POST", PARITY, '{"reference": {"kind": "onnx"', content_type="application/json")
    assert broken.status_code == 400 and error_of(broken)["code"] == "parse_error"
    form = client.post(PARITY, {"reference": "onnx"})  # multipart
    assert form.status_code == 415 and error_of(form)["code"] == "unsupported_media_type"
    assert not Job.objects.exists() or not Job.objects.filter(kind="parity").exists()


def test_a_missing_version_is_404_and_a_version_that_is_not_ready_is_409(client, model, engineer, versions):
    missing = client.post(
        "/api/v1/models/credit-risk/versions/2.0.0/parity/", {"reference": {"kind": "onnx"}}, format="json"
    )
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    mlp_version(model, engineer, "2.0.0", ready=False)
    validating = client.post("/api/v1/models/credit-risk/versions/2.0.0/benchmarks/", {}, format="json")
    assert validating.status_code == 409
    error = error_of(validating)
    assert error["code"] == "not_ready" and "validating" in error["message"]


@pytest.mark.parametrize("role", ["manager", "officer"])
def test_only_engineers_may_start_runs(request, versions, role):
    client = bearer_client(request.getfixturevalue(role))
    for url, body in ((PARITY, {"reference": {"kind": "onnx"}}), (BENCH, {})):
        response = client.post(url, body, format="json")
        assert response.status_code == 403
        assert "version.evaluate" in error_of(response)["message"]
    assert client.get(PARITY).status_code == 200  # but they may read them
    assert not Job.objects.filter(kind__in=["parity", "benchmark"]).exists()


def test_anonymous_and_expired_callers_get_401(engineer, versions):
    anonymous = APIClient().post(PARITY, {"reference": {"kind": "onnx"}}, format="json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    token, plain = token_create(user=engineer, name="ci", days=1)
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save(update_fields=["expires_at"])
    expired = APIClient()
    expired.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = expired.post(BENCH, {}, format="json")
    assert response.status_code == 401 and "expired" in error_of(response)["message"].lower()
    assert not Job.objects.filter(kind__in=["parity", "benchmark"]).exists()


# --- comparing benchmarks --------------------------------------------------------------------------------------------

COMPARE = "/api/v1/models/credit-risk/benchmarks/compare/"


def test_it_compares_benchmark_runs_against_the_first(client, versions):
    base_result = benchmark_result(p50_ms={1: 0.5, 8: 1.0, 64: 4.0})
    new_result = benchmark_result(p50_ms={1: 0.25, 8: 0.8, 64: 5.0})
    base = evaluation_job(versions["1.0.0"], "benchmark", result=base_result)
    new = evaluation_job(versions["1.1.0"], "benchmark", result=new_result)
    response = client.get(COMPARE, {"job": [str(base.pk), str(new.pk)]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == "credit-risk" and body["comparable"] is True and body["warnings"] == []
    assert [run["version"] for run in body["runs"]] == ["1.0.0", "1.1.0"]
    assert [run["job_id"] for run in body["runs"]] == [str(base.pk), str(new.pk)]
    assert body["batch_sizes"] == [1, 8, 64]
    assert [series["job_id"] for series in body["series"]] == [str(base.pk), str(new.pk)]
    ratios = {(row["label"], row["batch_size"]): row for row in body["ratios"]}
    label = body["series"][1]["label"]
    for row_base, row_new in zip(base_result["results"], new_result["results"], strict=True):
        ratio = ratios[(label, row_base["batch_size"])]
        assert ratio["p50_ratio"] == pytest.approx(row_new["latency_ms"]["p50"] / row_base["latency_ms"]["p50"])
        assert ratio["throughput_ratio"] == pytest.approx(row_new["throughput_sps"] / row_base["throughput_sps"])


def test_it_flags_runs_from_different_hardware(client, versions):
    cpu = evaluation_job(
        versions["1.0.0"], "benchmark", result=benchmark_result(p50_ms={1: 0.5}, key="1111222233334444")
    )
    gpu = evaluation_job(
        versions["1.1.0"],
        "benchmark",
        result=benchmark_result(p50_ms={1: 0.1}, device="cuda", key="5555666677778888", gpu="NVIDIA H100"),
    )
    body = client.get(COMPARE, {"job": [str(cpu.pk), str(gpu.pk)]}).json()
    assert body["comparable"] is False
    assert len(body["warnings"]) == 1 and "different hardware" in body["warnings"][0]


def test_two_runs_of_the_same_version_get_distinct_labels(client, versions):
    first = evaluation_job(versions["1.1.0"], "benchmark", result=benchmark_result(p50_ms={1: 0.5}))
    second = evaluation_job(versions["1.1.0"], "benchmark", result=benchmark_result(p50_ms={1: 0.4}))
    body = client.get(COMPARE, {"job": [str(first.pk), str(second.pk)]}).json()
    labels = [run["label"] for run in body["runs"]]
    assert len(set(labels)) == 2 and all(label.startswith("1.1.0") for label in labels)


def test_comparing_needs_two_succeeded_benchmarks_of_the_model(client, versions, engineer):
    good = evaluation_job(versions["1.0.0"], "benchmark", result=benchmark_result(p50_ms={1: 0.5}))
    failed = evaluation_job(versions["1.1.0"], "benchmark", status=JobStatus.FAILED, error="CUDA out of memory")
    parity = evaluation_job(versions["1.1.0"], "parity")
    other_model = model_create(name="fraud", owner=engineer)
    foreign = evaluation_job(
        mlp_version(other_model, engineer, "1.0.0"), "benchmark", result=benchmark_result(p50_ms={1: 1})
    )
    malformed = [[], [str(good.pk)], [str(good.pk), str(good.pk)], [str(good.pk), "not-a-uuid"]]
    not_comparable = [
        [str(good.pk), str(uuid.uuid4())],
        [str(good.pk), str(failed.pk)],
        [str(good.pk), str(parity.pk)],
        [str(good.pk), str(foreign.pk)],
    ]
    for ids, status in [(ids, 400) for ids in malformed] + [(ids, 404) for ids in not_comparable]:
        response = client.get(COMPARE, {"job": ids})
        assert response.status_code == status, (ids, response.content)
        error = error_of(response)
        assert error["field"] == "job" and error["message"], ids
    assert client.get("/api/v1/models/nope/benchmarks/compare/").status_code == 404


def test_the_schema_documents_the_new_endpoints():
    schema = APIClient().get("/api/schema/?format=json").json()
    paths = schema["paths"]
    parity = paths["/api/v1/models/{name}/versions/{version}/parity/"]
    assert {"202", "400", "401", "403", "404", "409"} <= set(parity["post"]["responses"])
    assert "application/json" in parity["post"]["requestBody"]["content"]
    assert "get" in parity and "post" in paths["/api/v1/models/{name}/versions/{version}/benchmarks/"]
    compare = paths["/api/v1/models/{name}/benchmarks/compare/"]["get"]
    assert any(param["name"] == "job" for param in compare["parameters"])
    assert "409" in paths["/api/v1/jobs/{id}/cancel/"]["post"]["responses"]
