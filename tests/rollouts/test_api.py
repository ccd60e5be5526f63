"""The rollout API as a client drives it with a Bearer token: every answer in the error shape, every role checked."""

from __future__ import annotations

import pytest

from forge_site.models import AuditEvent
from models_registry.models import AliasAssignment
from models_registry.services import model_create
from rollouts.api import views
from rollouts.models import Rollout
from rollouts.services import promotion_request, rollout_advance
from tests.api.helpers import bearer_client
from tests.rollouts.conftest import actions, ready_version, serve, started

pytestmark = pytest.mark.django_db

CREATE = {"model": "credit-risk", "challenger": "1.1.0", "plan": [5, 25, 50, 100], "primary_metric": "success"}


def error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


@pytest.fixture
def as_engineer(setup):
    return bearer_client(setup.engineer)


@pytest.fixture
def as_manager(setup):
    return bearer_client(setup.manager)


def test_an_engineer_drafts_a_rollout_and_reads_it_back(setup, as_engineer, settings):
    settings.FORGE_SERVING_URL = "http://serving.example:8001/"
    response = as_engineer.post("/api/v1/rollouts/", CREATE, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "draft" and body["split"] == {"champion": 100.0, "challenger": 0.0}
    assert body["predict_url"] == f"http://serving.example:8001/api/v1/rollouts/{body['id']}/predict/"
    assert body["plan_text"] == "5% → 25% → 50% → 100%" and body["guardrails"]["max_p95_latency_ratio"] == 1.5
    assert body["statistics"]["recommendation"]["action"] == "keep going"
    assert body["promotion"] is None and body["url"] == f"/rollouts/{body['id']}/"
    listed = as_engineer.get("/api/v1/rollouts/?state=draft").json()
    assert listed["count"] == 1 and listed["results"][0]["statistics"]["srm"] is None
    assert as_engineer.get("/api/v1/rollouts/?state=running").json()["count"] == 0


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"model": "nope"}, 404, "model"),
        ({"challenger": "9.9.9"}, 400, "challenger"),
        ({"plan": [50, 25]}, 400, "plan[1]"),
        ({"plan": "fast"}, 400, "plan"),
        ({"guardrails": {"max_p95_latency_ratio": -1}}, 400, "guardrails"),
        ({"unit_key": ""}, 400, "unit_key"),
    ],
)
def test_bad_drafts_get_the_error_shape_naming_the_field(setup, as_engineer, change, status, field):
    response = as_engineer.post("/api/v1/rollouts/", {**CREATE, **change}, format="json")
    assert response.status_code == status
    assert error(response)["field"] == field
    assert not Rollout.objects.exists()


def test_managers_and_officers_may_not_draft(setup, as_manager):
    assert as_manager.post("/api/v1/rollouts/", CREATE, format="json").status_code == 403


def test_the_lifecycle_over_the_api(setup, as_engineer, as_manager):
    rollout_id = as_engineer.post("/api/v1/rollouts/", CREATE, format="json").json()["id"]
    base = f"/api/v1/rollouts/{rollout_id}"
    assert as_engineer.post(f"{base}/start/").json()["split"]["challenger"] == 5.0
    assert as_engineer.post(f"{base}/advance/").json()["step"] == 2
    assert as_manager.post(f"{base}/pause/", {"reason": "incident"}, format="json").json()["state"] == "paused"
    assert as_manager.post(f"{base}/resume/").json()["split"]["challenger"] == 25.0
    refused = as_manager.post(f"{base}/rollback/", {}, format="json")
    assert refused.status_code == 400 and error(refused)["field"] == "reason"
    done = as_manager.post(f"{base}/rollback/", {"reason": "complaints"}, format="json").json()
    assert (done["state"], done["end_reason"]) == ("rolled_back", "complaints")
    again = as_engineer.post(f"{base}/start/")
    assert again.status_code == 409 and error(again)["code"] == "wrong_state"
    assert as_engineer.post("/api/v1/rollouts/999/start/").status_code == 404


def test_a_second_rollout_started_while_one_runs_gets_a_409(setup, as_engineer):
    started(setup)
    ready_version(setup.model, "1.2.0", setup.engineer, seed=2)
    second = as_engineer.post("/api/v1/rollouts/", {**CREATE, "challenger": "1.2.0"}, format="json").json()["id"]
    response = as_engineer.post(f"/api/v1/rollouts/{second}/start/")
    assert response.status_code == 409 and error(response)["code"] == "rollout_active"


def test_promotion_over_the_api_with_four_eyes(setup, as_engineer, as_manager):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", 1200)
    serve(rollout, "challenger", 1200)
    base = f"/api/v1/rollouts/{rollout.pk}/promotion"
    assert as_engineer.get(f"{base}/").json()["request"] is None
    asked = as_engineer.post(f"{base}/", {"comment": "ready"}, format="json")
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    assert {r["key"]: r["status"] for r in asked.json()["requirements"]}["samples"] == "met"
    # An engineer calling approve.
    assert as_engineer.post(f"{base}/approve/", {}, format="json").status_code == 403
    # Approve while a requirement is unmet, without an override reason.
    unmet = as_manager.post(f"{base}/approve/", {"comment": "ok"}, format="json")
    assert unmet.status_code == 409 and error(unmet) == {
        "code": "requirements_unmet",
        "message": error(unmet)["message"],
        "field": "override_reason",
    }
    assert (
        AliasAssignment.objects.get(model=setup.model, alias="champion", ended_at__isnull=True).version.version
        == "1.0.0"
    )
    # A double-clicked approve (with the override): both answers are the approval, one promotion.
    body = {"comment": "ok", "override_reason": "parity run outside Forge, ticket RISK-12"}
    first = as_manager.post(f"{base}/approve/", body, format="json")
    second = as_manager.post(f"{base}/approve/", body, format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"] and second.json()["status"] == "approved"
    assert actions().count("promotion.approve") == 1
    assert as_engineer.get(f"/api/v1/rollouts/{rollout.pk}/").json()["state"] == "promoted"


def test_a_manager_cannot_approve_their_own_request_over_the_api(setup, as_manager):
    rollout = started(setup, plan=[50])
    promotion_request(rollout=rollout, actor=setup.manager)
    response = as_manager.post(
        f"/api/v1/rollouts/{rollout.pk}/promotion/approve/", {"override_reason": "x"}, format="json"
    )
    assert response.status_code == 403 and error(response)["code"] == "own_request"
    rejected = as_manager.post(f"/api/v1/rollouts/{rollout.pk}/promotion/reject/", {"comment": "x"}, format="json")
    assert rejected.status_code == 403


def test_assign_answers_the_arm_and_refuses_a_10_kb_unit(setup, as_engineer):
    rollout = started(setup, plan=[50])
    url = f"/api/v1/rollouts/{rollout.pk}/assign/"
    sticky = as_engineer.get(url, {"unit": "user-42"}).json()
    assert sticky["assignment"] == "sticky" and sticky["arm"] in {"champion", "challenger"}
    assert as_engineer.get(url, {"unit": "user-42"}).json()["arm"] == sticky["arm"]
    assert as_engineer.get(url).json()["assignment"] == "random"
    too_long = as_engineer.get(url, {"unit": "u" * 10_240})
    assert too_long.status_code == 400
    assert error(too_long)["code"] == "unit_too_long" and error(too_long)["field"] == "unit"
    assert bearer_client(setup.manager).get(url, {"unit": "u"}).status_code == 403


def test_outcomes_are_recorded_once_and_unknown_request_ids_are_refused(setup, as_engineer):
    rollout = started(setup, plan=[50])
    request_id = as_engineer.get(f"/api/v1/rollouts/{rollout.pk}/assign/", {"unit": "u1"}).json()["request_id"]
    url = f"/api/v1/rollouts/{rollout.pk}/outcomes/"
    created = as_engineer.post(url, {"request_id": request_id, "success": True}, format="json")
    assert created.status_code == 201 and created.json()["recorded"] is True
    repeated = as_engineer.post(url, {"request_id": request_id, "success": True}, format="json")
    assert repeated.status_code == 200 and repeated.json()["recorded"] is False
    changed = as_engineer.post(url, {"request_id": request_id, "success": False}, format="json")
    assert changed.status_code == 409 and error(changed)["code"] == "duplicate"
    unknown = as_engineer.post(
        url, {"request_id": "r1-a-0-000000000000-0000000000000000", "success": True}, format="json"
    )
    assert unknown.status_code == 404 and error(unknown)["code"] == "unknown_request"
    assert as_engineer.get(f"/api/v1/rollouts/{rollout.pk}/").json()["rejected_outcomes"] == 1
    neither = as_engineer.post(url, {"request_id": request_id}, format="json")
    assert neither.status_code == 400


def test_predict_on_the_console_points_to_the_serving_process(setup, as_engineer):
    rollout = started(setup)
    response = as_engineer.post(f"/api/v1/rollouts/{rollout.pk}/predict/", {"unit": "u", "inputs": {}}, format="json")
    assert response.status_code == 421
    assert error(response)["code"] == "served_elsewhere"
    predict_url = as_engineer.get(f"/api/v1/rollouts/{rollout.pk}/").json()["predict_url"]
    assert predict_url in error(response)["message"] and predict_url in response["Link"]


def test_the_machine_paths_use_the_machine_throttle_scope():
    for view in (views.AssignView, views.OutcomesView, views.PredictView):
        assert view.throttle_scope == "machine"


def test_a_manager_sets_an_alias_directly_with_a_reason(setup, as_manager, as_engineer):
    model = model_create(name="fraud", owner=setup.engineer)
    ready_version(model, "0.1.0", setup.engineer, seed=3)
    url = "/api/v1/models/fraud/aliases/champion/"
    body = {"version": "0.1.0", "reason": "first champion after validation"}
    assert as_engineer.put(url, body, format="json").status_code == 403
    assert as_manager.get(url).status_code == 404
    no_reason = as_manager.put(url, {"version": "0.1.0"}, format="json")
    assert no_reason.status_code == 400 and error(no_reason)["field"] == "reason"
    response = as_manager.put(url, body, format="json")
    assert response.status_code == 200 and response.json()["version"] == "0.1.0"
    assert response.json()["reason"] == "first champion after validation"
    event = AuditEvent.objects.filter(action="alias.move").first()
    assert event.actor_label == "mo" and event.after["reason"] == "first champion after validation"
    assert as_manager.get(url).json()["assigned_by"] == "mo"
    assert as_manager.put("/api/v1/models/fraud/aliases/hero/", body, format="json").status_code == 404
    assert (
        as_manager.put("/api/v1/models/fraud/aliases/champion/", {**body, "version": "9"}, format="json").status_code
        == 404
    )


def test_the_gateway_export_gives_the_current_split_as_istio_weights_or_a_kserve_canary(setup):
    rollout = started(setup, plan=[{"share": 2.5}, {"share": 25}, {"share": 100}])
    client = bearer_client(setup.officer)
    istio = client.get(f"/api/v1/rollouts/{rollout.pk}/gateway/").json()
    assert istio["format"] == "istio" and istio["share"] == 2.5 and istio["rounded"] is True
    route = istio["config"]["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [("v1-0-0", 97), ("v1-1-0", 3)]
    assert istio["config"]["metadata"]["name"] == "credit-risk"
    rollout_advance(rollout=rollout, actor=setup.engineer)
    kserve = client.get(f"/api/v1/rollouts/{rollout.pk}/gateway/?target=kserve").json()
    predictor = kserve["config"]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 25 and kserve["rounded"] is False
    assert predictor["model"]["storageUri"] == "s3://models/credit-risk/1.1.0/model.pt"
    assert kserve["config"]["metadata"]["annotations"]["forge/challenger"].startswith("1.1.0 sha256:")
    bad = client.get(f"/api/v1/rollouts/{rollout.pk}/gateway/?target=nginx")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "target"
    assert client.get(f"/api/v1/rollouts/{rollout.pk}/gateway/?host=Bad_Host").status_code == 400
