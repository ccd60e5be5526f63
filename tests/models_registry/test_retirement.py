"""Retiring models and versions (NIST AI RMF GOVERN 1.7): audited with a reason, records and artifacts kept, and a
retired version can no longer be evaluated, promoted, aliased or served, which every page and the API say."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from forge_site.models import AuditEvent, Job
from models_registry.models import AliasAssignment, ModelVersion
from models_registry.services import (
    RegistryError,
    alias_set,
    benchmark_start,
    model_create,
    model_retire,
    parity_start,
    version_retire,
)
from tests.api.helpers import bearer_client, error_of, mlp, mlp_version, upload
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

VERSION_URL = "/api/v1/models/credit-risk/versions/1.1.0/"


@pytest.fixture
def model(engineer):
    return model_create(name="credit-risk", owner=engineer)


@pytest.fixture
def versions(model, engineer) -> dict[str, ModelVersion]:
    return {
        "1.0.0": mlp_version(model, engineer, "1.0.0"),
        "1.1.0": mlp_version(model, engineer, "1.1.0", onnx=True),
    }


def _web(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- the API ---------------------------------------------------------------------------------------------------------


def test_an_engineer_retires_a_version_with_a_reason_and_its_records_stay(engineer, versions):
    client = bearer_client(engineer)
    response = client.post(f"{VERSION_URL}retire/", {"reason": "superseded by 1.2.0"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["retired"]["reason"] == "superseded by 1.2.0" and body["retired"]["by"] == engineer.username
    assert body["retired"]["scope"] == "version" and body["usable"] is False
    assert body["status"] == "ready" and body["sha256"] == versions["1.1.0"].sha256
    (event,) = _events("version.retire")
    assert event.after["reason"] == "superseded by 1.2.0" and event.actor_id == engineer.pk
    assert event.object_repr == "credit-risk:1.1.0"
    # kept: the artifact downloads, the version is listed (with the same retirement as its detail)
    assert client.get(f"{VERSION_URL}artifact/").status_code == 200
    listed = {row["version"]: row for row in client.get("/api/v1/models/credit-risk/versions/").json()["results"]}
    assert listed["1.1.0"]["retired"] == body["retired"] and listed["1.1.0"]["usable"] is False
    assert listed["1.0.0"]["retired"] is None and listed["1.0.0"]["usable"] is True
    usable = client.get("/api/v1/models/credit-risk/versions/?usable=true").json()["results"]
    assert [row["version"] for row in usable] == ["1.0.0"]
    retired = client.get("/api/v1/models/credit-risk/versions/?retired=true").json()["results"]
    assert [row["version"] for row in retired] == ["1.1.0"]


def test_a_manager_may_retire_and_an_officer_may_not(manager, officer, versions):
    refused = bearer_client(officer).post(f"{VERSION_URL}retire/", {"reason": "no"}, format="json")
    assert refused.status_code == 403 and error_of(refused)["code"] == "permission_denied"
    refused = bearer_client(officer).post("/api/v1/models/credit-risk/retire/", {"reason": "no"}, format="json")
    assert refused.status_code == 403
    assert not _events("version.retire") and not _events("model.retire")
    assert (
        bearer_client(manager).post(f"{VERSION_URL}retire/", {"reason": "withdrawn"}, format="json").status_code == 200
    )


def test_retiring_twice_is_refused_and_recorded_once(engineer, versions):
    client = bearer_client(engineer)
    assert client.post(f"{VERSION_URL}retire/", {"reason": "first"}, format="json").status_code == 200
    again = client.post(f"{VERSION_URL}retire/", {"reason": "second"}, format="json")
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "already_retired" and "already retired" in error["message"] and "first" in error["message"]
    assert len(_events("version.retire")) == 1
    assert ModelVersion.objects.get(version="1.1.0").retired_reason == "first"


@pytest.mark.parametrize(
    ("body", "needle", "status"),
    [({}, "reason", 400), ({"reason": "   "}, "reason", 422), ({"reason": "x" * 2001}, "2000", 400)],
)
def test_a_retirement_needs_a_reason_within_the_limit(engineer, versions, body, needle, status):
    response = bearer_client(engineer).post(f"{VERSION_URL}retire/", body, format="json")
    assert response.status_code == status
    error = error_of(response)
    assert error["field"] == "reason" and needle in error["message"].replace(",", "")
    assert ModelVersion.objects.get(version="1.1.0").retired_at is None


def test_a_retired_version_cannot_be_evaluated(engineer, versions):
    client = bearer_client(engineer)
    client.post(f"{VERSION_URL}retire/", {"reason": "withdrawn"}, format="json")
    for path, body in (("parity/", {"reference": {"kind": "onnx"}}), ("benchmarks/", {"batch_sizes": [1]})):
        response = client.post(f"{VERSION_URL}{path}", body, format="json")
        assert response.status_code == 409, response.content
        error = error_of(response)
        assert error["code"] == "retired" and "retired (withdrawn)" in error["message"]
    # nor be the reference of another version's run
    response = client.post(
        "/api/v1/models/credit-risk/versions/1.0.0/parity/",
        {"reference": {"kind": "version", "version": "1.1.0"}},
        format="json",
    )
    assert response.status_code == 409 and error_of(response)["code"] == "retired"
    assert not Job.objects.filter(kind__in=["parity", "benchmark"]).exists()


def test_a_retired_version_cannot_hold_an_alias(engineer, manager, versions):
    version_retire(version=versions["1.1.0"], actor=engineer, reason="withdrawn")
    with pytest.raises(RegistryError) as refused:
        alias_set(model=versions["1.1.0"].model, alias="champion", version=versions["1.1.0"], actor=manager)
    assert refused.value.code == "retired" and "retired (withdrawn)" in refused.value.message
    assert not AliasAssignment.objects.exists()


def test_retiring_the_champion_clears_the_alias_and_keeps_its_history(engineer, manager, model, versions):
    alias_set(model=model, alias="champion", version=versions["1.1.0"], actor=manager, reason="launch")
    version_retire(version=versions["1.1.0"], actor=manager, reason="fairness finding")
    period = AliasAssignment.objects.get()
    assert period.version == versions["1.1.0"] and period.ended_at is not None
    (cleared,) = _events("alias.clear")
    (retired,) = _events("version.retire")
    assert retired.seq < cleared.seq and retired.after["aliases"] == ["champion"]
    assert cleared.after["reason"] == "credit-risk:1.1.0 was retired"
    aliases = bearer_client(engineer).get("/api/v1/models/credit-risk/aliases/").json()
    assert aliases == []


def test_retiring_a_model_retires_every_version_and_takes_no_new_ones(engineer, manager, model, versions):
    alias_set(model=model, alias="champion", version=versions["1.0.0"], actor=manager)
    client = bearer_client(engineer)
    response = client.post("/api/v1/models/credit-risk/retire/", {"reason": "product discontinued"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["retired"]["reason"] == "product discontinued"
    listed = client.get("/api/v1/models/?retired=true").json()["results"]
    assert [row["name"] for row in listed] == ["credit-risk"] and listed[0]["retired"] == response.json()["retired"]
    assert client.get("/api/v1/models/?retired=false").json()["count"] == 0
    for version in versions.values():
        version.refresh_from_db()
        assert not version.is_usable and version.is_retired
        body = client.get(f"/api/v1/models/credit-risk/versions/{version.version}/").json()
        assert body["retired"]["scope"] == "model" and body["usable"] is False
    assert not ModelVersion.objects.usable().exists()
    assert AliasAssignment.objects.get().ended_at is not None
    with pytest.raises(RegistryError, match="already retired with its model"):
        version_retire(version=versions["1.0.0"], actor=engineer, reason="again")
    refused = upload(client, "credit-risk", "2.0.0", mlp(3))
    assert refused.status_code == 409 and error_of(refused)["code"] == "retired"
    with pytest.raises(RegistryError) as refused_run:
        parity_start(version=versions["1.0.0"], actor=engineer, reference={"kind": "device", "dtype": "float64"})
    assert refused_run.value.code == "retired" and "with its model" in refused_run.value.message
    with pytest.raises(RegistryError):
        benchmark_start(version=versions["1.0.0"], actor=engineer)
    again = client.post("/api/v1/models/credit-risk/retire/", {"reason": "x"}, format="json")
    assert again.status_code == 409 and error_of(again)["code"] == "already_retired"
    assert [e.after["reason"] for e in _events("model.retire")] == ["product discontinued"]


def test_the_usable_queryset_matches_is_usable(engineer, model, versions):
    other = model_create(name="other", owner=engineer)
    kept = mlp_version(other, engineer, "1")
    validating = mlp_version(other, engineer, "2", ready=False)
    version_retire(version=versions["1.1.0"], actor=engineer, reason="r")
    gone = model_create(name="gone", owner=engineer)
    with_model = mlp_version(gone, engineer, "1")
    model_retire(model=gone, actor=engineer, reason="r")
    usable = set(ModelVersion.objects.usable())
    for version in [*ModelVersion.objects.select_related("model")]:
        assert (version in usable) == version.is_usable
    assert usable == {versions["1.0.0"], kept} and validating not in usable and with_model not in usable


# --- the pages -------------------------------------------------------------------------------------------------------


def test_the_version_page_retires_with_a_confirmation_and_then_says_so(engineer, versions):
    client = _web(engineer)
    page = reverse("registry:version_detail", args=["credit-risk", "1.1.0"])
    url = reverse("registry:version_retire", args=["credit-risk", "1.1.0"])
    before = client.get(page).content.decode()
    assert 'id="retire"' in before and 'name="parity-reference"' in before
    unconfirmed = client.post(url, {"retire-reason": "superseded"})
    assert unconfirmed.status_code == 400 and "This field is required" in unconfirmed.content.decode()
    assert ModelVersion.objects.get(version="1.1.0").retired_at is None
    done = client.post(url, {"retire-reason": "superseded by 1.2.0", "retire-confirm": "on"})
    assert done.status_code == 302 and done["Location"] == page
    html = client.get(page).content.decode()
    assert 'id="version-retired"' in html and 'id="retired-notice"' in html and "superseded by 1.2.0" in html
    assert 'id="retire"' not in html  # retiring is final: no second form
    assert 'name="parity-reference"' not in html and 'name="benchmark-batch_sizes"' not in html
    model_page = client.get(reverse("registry:model_detail", args=["credit-risk"])).content.decode()
    assert 'class="badge badge-retired"' in model_page
    registry = client.get(reverse("registry:model_list")).content.decode()
    assert "badge-retired" in registry  # 1.1.0 is the latest version
    refused = client.post(reverse("registry:parity_start", args=["credit-risk", "1.1.0"]), {"parity-reference": "onnx"})
    assert refused.status_code in (400, 409) and not Job.objects.filter(kind="parity").exists()


def test_the_model_page_retires_the_model(manager, officer, model, versions):
    url = reverse("registry:model_retire", args=["credit-risk"])
    assert _web(officer).post(url, {"retire-reason": "x", "retire-confirm": "on"}).status_code == 403
    assert (
        'id="retire"' not in _web(officer).get(reverse("registry:model_detail", args=["credit-risk"])).content.decode()
    )
    client = _web(manager)
    done = client.post(url, {"retire-reason": "discontinued", "retire-confirm": "on"})
    assert done.status_code == 302
    html = client.get(reverse("registry:model_detail", args=["credit-risk"])).content.decode()
    assert 'id="model-retired"' in html and "discontinued" in html and "Upload a version" not in html
    version_page = client.get(reverse("registry:version_detail", args=["credit-risk", "1.0.0"])).content.decode()
    assert "Retired with its model" in version_page
    again = client.post(url, {"retire-reason": "again", "retire-confirm": "on"})
    assert again.status_code == 409 and "already retired" in again.content.decode()
