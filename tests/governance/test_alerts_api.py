"""The alerts API: destinations (secrets write-only), rules, the history, deliveries and send-test; validation and
roles."""

from __future__ import annotations

import pytest

from forge_site.models import AuditEvent
from governance.models import AlertDestination
from governance.services.alert_destinations import destination_secrets
from governance.services.alerts import alert_raise, alert_rules_evaluate
from tests.api.helpers import bearer_client
from tests.governance.alert_helpers import make_version, run_delivery, start_receiver
from tests.governance.test_alert_rules import drift_result

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.example.com/services/T0AAAA/B0BBBB/xoxbSECRETtoken123"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefSECRET"
SIGNING = "whsec-SIGNING-0123456789-secret"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch, settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True
    settings.FORGE_ALERT_RETRY_BASE_S = 0.0
    answers = {
        "hooks.example.com": ["93.184.215.14"],
        "events.pagerduty.com": ["93.184.215.15"],
        "inside.example.com": ["10.20.30.40"],
        "localhost": ["127.0.0.1"],
    }
    monkeypatch.setattr("governance.services.alert_destinations.resolve_host", lambda host, port: answers.get(host, []))


@pytest.fixture
def erin(engineer):
    return bearer_client(engineer)


def create(client, **body):
    return client.post("/api/v1/alerts/destinations/", body, format="json")


def assert_no_secret(response, *secrets):
    text = response.content.decode()
    for secret in secrets:
        assert secret not in text
        assert secret[-12:] not in text


def test_destinations_are_created_per_kind_and_never_show_their_secrets(erin):
    slack = create(erin, name="ops channel", kind="slack", url=SLACK_URL)
    pager = create(erin, name="on-call", kind="pagerduty", routing_key=ROUTING_KEY, min_severity="critical")
    hook = create(
        erin,
        name="siem",
        kind="webhook",
        url="https://hooks.example.com/forge?token=abc123SECRET",
        signing_secret=SIGNING,
    )
    assert [r.status_code for r in (slack, pager, hook)] == [201, 201, 201]
    for response in (slack, pager, hook):
        assert_no_secret(response, SLACK_URL, ROUTING_KEY, SIGNING, "abc123SECRET")
    assert slack.json()["url"] == "https://hooks.example.com/…" and slack.json()["secret_hint"] == ""
    assert pager.json()["url"] == "https://events.pagerduty.com/…" and pager.json()["secret_hint"] == "…CRET"
    assert hook.json()["secret_hint"] == "set"
    listing = erin.get("/api/v1/alerts/destinations/")
    assert listing.json()["count"] == 3
    assert_no_secret(listing, SLACK_URL, ROUTING_KEY, SIGNING, "abc123SECRET")
    assert_no_secret(erin.get(f"/api/v1/alerts/destinations/{slack.json()['id']}/"), SLACK_URL)
    stored = AlertDestination.objects.get(name="ops channel")
    assert SLACK_URL not in stored.url_sealed  # encrypted at rest
    assert destination_secrets(stored) == (SLACK_URL, "")
    events = AuditEvent.objects.filter(action="alert_destination.create").order_by("seq")
    assert [e.after["name"] for e in events] == ["ops channel", "on-call", "siem"]
    for event in events:
        assert (
            SLACK_URL not in str(event.after)
            and ROUTING_KEY not in str(event.after)
            and SIGNING not in str(event.after)
        )


def test_a_change_without_a_secret_keeps_the_saved_one(erin):
    pager = create(erin, name="on-call", kind="pagerduty", routing_key=ROUTING_KEY).json()
    url = f"/api/v1/alerts/destinations/{pager['id']}/"
    changed = erin.patch(url, {"name": "primary on-call", "enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "primary on-call"
    assert destination_secrets(AlertDestination.objects.get(pk=pager["id"]))[1] == ROUTING_KEY
    new_key = "NEWKEY00000000000000000000000001"
    rotated = erin.patch(url, {"routing_key": new_key}, format="json")
    assert rotated.json()["secret_hint"] == "…0001"
    assert destination_secrets(AlertDestination.objects.get(pk=pager["id"]))[1] == new_key
    event = AuditEvent.objects.filter(action="alert_destination.update").order_by("seq").last()
    assert event.after["secret_changed"] is True and new_key not in str(event.after)
    refused = erin.patch(url, {"signing_secret": SIGNING}, format="json")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "signing_secret"
    assert erin.delete(url).status_code == 204
    assert AuditEvent.objects.filter(action="alert_destination.delete").count() == 1
    assert erin.get(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        ({"kind": "slack", "url": "file:///etc/passwd"}, 400, "url", "https URL"),
        ({"kind": "slack", "url": "https://169.254.169.254/latest/"}, 422, "url", "cloud metadata address"),
        ({"kind": "slack", "url": "https://[fd00:ec2::254]/"}, 422, "url", "cloud metadata address"),
        ({"kind": "slack", "url": "https://metadata.google.internal/x"}, 422, "url", "cloud metadata host"),
        ({"kind": "slack", "url": "https://169.254.3.4/x"}, 422, "url", "link-local"),
        ({"kind": "slack", "url": "https://inside.example.com/x"}, 422, "url", "10.20.30.40 is a private address"),
        ({"kind": "slack", "url": "https://nowhere.example.com/x"}, 422, "url", "resolves to no address"),
        ({"kind": "slack", "url": "http://hooks.example.com/x"}, 422, "url", "Only https"),
        ({"kind": "slack"}, 400, "url", "required"),
        ({"kind": "webhook", "url": SLACK_URL}, 400, "signing_secret", "required"),
        ({"kind": "webhook", "url": SLACK_URL, "signing_secret": "short"}, 400, "signing_secret", "16"),
        ({"kind": "pagerduty"}, 400, "routing_key", "required"),
        ({"kind": "email", "url": SLACK_URL}, 400, "kind", "kind must be one of"),
        ({"kind": "slack", "url": SLACK_URL, "models": ["no-such-model"]}, 422, "models", "no model named"),
        ({"kind": "slack", "url": SLACK_URL, "enabled": "yes"}, 400, "enabled", "valid boolean"),
    ],
)
def test_a_destination_it_cannot_or_may_not_send_to_is_refused(erin, body, status, field, says):
    response = create(erin, name="bad", **body)
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["field"] == field and says in error["message"]
    assert not AlertDestination.objects.exists()


def test_a_taken_name_is_a_conflict(erin):
    assert create(erin, name="Ops", kind="slack", url=SLACK_URL).status_code == 201
    taken = create(erin, name="ops", kind="slack", url=SLACK_URL)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "duplicate"


def test_rules_through_the_api(erin, engineer):
    version = make_version(owner=engineer)
    created = erin.post(
        "/api/v1/alerts/rules/",
        {
            "name": "drift",
            "model": "credit-risk",
            "version": "1.0.0",
            "metric": "feature_drift",
            "feature": "income",
            "comparison": "gte",
            "threshold": 0.2,
            "severity": "critical",
            "lookback_minutes": 120,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    rule = created.json()
    assert (rule["model"], rule["version"], rule["condition"], rule["cooldown_minutes"]) == (
        "credit-risk",
        "1.0.0",
        "feature_drift[income] >= 0.2",
        60,
    )
    url = f"/api/v1/alerts/rules/{rule['id']}/"
    assert erin.patch(url, {"threshold": 0.3, "feature": None}, format="json").json()["condition"] == (
        "feature_drift[any] >= 0.3"
    )
    assert erin.patch(url, {"model": None}, format="json").json()["version"] is None  # the version went with it
    for body, status, field in [
        ({"metric": "drift_share", "model": "nope"}, 422, "model"),
        ({"metric": "drift_share", "version": "1.0.0"}, 422, "version"),
        ({"metric": "drift_share", "model": "credit-risk", "version": "9.9"}, 422, "version"),
        ({"metric": "latency_p99"}, 400, "metric"),
        ({"metric": "drift_share", "feature": "income"}, 422, "feature"),
        ({"metric": "drift_share", "threshold": "0.5"}, 400, "threshold"),
    ]:
        response = erin.post("/api/v1/alerts/rules/", {"name": "r2", "threshold": 0.5, **body}, format="json")
        assert (response.status_code, response.json()["error"]["field"]) == (status, field), body
    assert erin.delete(url).status_code == 204
    assert list(
        AuditEvent.objects.filter(action__startswith="alert_rule.").order_by("seq").values_list("action", flat=True)
    ) == [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.update",
        "alert_rule.delete",
    ]
    assert version.pk


def test_send_test_queues_a_delivery_whose_attempts_the_api_shows(erin):
    receiver = start_receiver()
    try:
        hook = create(erin, name="local", kind="slack", url=receiver.url("/t")).json()
        response = erin.post(f"/api/v1/alerts/destinations/{hook['id']}/test/")
        assert response.status_code == 202
        delivery = response.json()
        assert (delivery["event"], delivery["status"], delivery["alert"], delivery["attempt_log"]) == (
            "test",
            "pending",
            None,
            [],
        )
        assert response["Location"] == f"/api/v1/alerts/deliveries/{delivery['id']}/"
        receiver.answer((500, {}, b"boom"))
        run_delivery(delivery["id"])
        shown = erin.get(response["Location"]).json()
        assert shown["status"] == "delivered" and shown["created_by"] == "erin"
        assert [(a["number"], a["status_code"], a["outcome"]) for a in shown["attempt_log"]] == [
            (1, 500, "retry"),
            (2, 200, "delivered"),
        ]
        assert "Forge test notification" in receiver.received[0].json()["text"]
        listed = erin.get(f"/api/v1/alerts/deliveries/?destination={hook['id']}&event=test").json()
        assert [d["id"] for d in listed["results"]] == [delivery["id"]]
    finally:
        receiver.close()
    assert erin.post("/api/v1/alerts/destinations/999999/test/").status_code == 404


def test_the_alert_history_by_model_and_version_with_deliveries(erin, engineer):
    create(erin, name="ops", kind="slack", url=SLACK_URL)
    first, second = make_version(owner=engineer), make_version(version="2.0.0", owner=engineer)
    erin.post("/api/v1/alerts/rules/", {"name": "share", "metric": "drift_share", "threshold": 0.4}, format="json")
    alert_rules_evaluate(version=first, kind="drift", result=drift_result({"a": (1, True)}))
    alert_raise(
        model=second.model,
        version=second,
        source="rollout",
        metric="error_rate",
        feature=None,
        value=0.3,
        threshold=0.1,
        severity="critical",
        message="guardrail breached",
        dedup_key="rollout:1",
    )
    everything = erin.get("/api/v1/alerts/").json()
    assert everything["count"] == 2
    only = erin.get("/api/v1/alerts/?model=credit-risk&version=1.0.0&status=firing").json()["results"]
    assert [(a["source"], a["rule"], a["metric"], a["version"]) for a in only] == [
        ("rule", "share", "drift_share", "1.0.0")
    ]
    assert erin.get("/api/v1/alerts/?source=rollout&severity=critical").json()["results"][0]["version"] == "2.0.0"
    detail = erin.get(f"/api/v1/alerts/{only[0]['id']}/").json()
    assert [(d["destination_name"], d["event"], d["status"]) for d in detail["deliveries"]] == [
        ("ops", "fire", "pending")
    ]
    assert "routing_key" not in str(detail) and SLACK_URL not in str(detail)
    assert erin.get("/api/v1/alerts/424242/").status_code == 404


@pytest.mark.parametrize("role", ["manager", "officer"])
def test_managers_and_officers_read_but_do_not_change(request, erin, role):
    hook = create(erin, name="ops", kind="slack", url=SLACK_URL).json()
    reader = bearer_client(request.getfixturevalue(role))
    for path in (
        "alerts/",
        "alerts/rules/",
        "alerts/destinations/",
        f"alerts/destinations/{hook['id']}/",
        "alerts/deliveries/",
    ):
        assert reader.get(f"/api/v1/{path}").status_code == 200, path
    assert create(reader, name="x", kind="slack", url=SLACK_URL).status_code == 403
    assert reader.post(f"/api/v1/alerts/destinations/{hook['id']}/test/").status_code == 403
    assert reader.delete(f"/api/v1/alerts/destinations/{hook['id']}/").status_code == 403
    assert reader.post("/api/v1/alerts/rules/", {}, format="json").status_code == 403
