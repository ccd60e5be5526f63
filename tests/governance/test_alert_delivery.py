"""Alert delivery to a local receiver: what each kind of destination receives, the signature, retries with backoff
and Retry-After, timeouts, final refusals, the address check at delivery time, and the resolve after the trigger.

Attempts run in the test process here (tests/governance/test_alert_worker.py runs them on a real worker)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from email.utils import format_datetime

import pytest
from django.utils import timezone

from forge_site.models import AuditEvent
from governance.models import (
    Alert,
    AlertDelivery,
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryEvent,
    DeliveryStatus,
    DestinationKind,
)
from governance.services import alert_delivery
from governance.services.alert_delivery import alert_deliveries_sweep, alert_delivery_attempt
from governance.services.alert_destinations import alert_destination_create, alert_destination_delete
from governance.services.alerts import alert_raise, alert_resolve
from tests.governance.alert_helpers import HANG, make_version, run_delivery, start_receiver, verify_signature

pytestmark = pytest.mark.django_db

SECRET = "whsec-0123456789abcdef-signing"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True
    settings.FORGE_ALERT_CONNECT_TIMEOUT_S = 2.0
    settings.FORGE_ALERT_READ_TIMEOUT_S = 0.5
    settings.FORGE_ALERT_TOTAL_TIMEOUT_S = 3.0
    settings.FORGE_ALERT_RETRY_BASE_S = 0.0
    settings.FORGE_ALERT_MAX_ATTEMPTS = 6
    settings.FORGE_PUBLIC_URL = "https://forge.example"
    return settings


@pytest.fixture
def receiver():
    server = start_receiver()
    yield server
    server.close()


@pytest.fixture
def version(engineer):
    return make_version(owner=engineer)


def destination(engineer, receiver, kind=DestinationKind.WEBHOOK, **kwargs):
    secrets = {
        DestinationKind.WEBHOOK: {"signing_secret": SECRET},
        DestinationKind.PAGERDUTY: {"routing_key": ROUTING_KEY},
        DestinationKind.SLACK: {},
    }[kind]
    return alert_destination_create(
        actor=engineer, name=f"{kind} receiver", kind=kind, url=receiver.url(f"/{kind}"), **{**secrets, **kwargs}
    )


def raise_alert(version, *, severity="critical", dedup_key="drift:credit-risk", **kwargs) -> Alert:
    alert = alert_raise(
        model=version.model,
        version=version,
        source=kwargs.pop("source", "rollout"),
        metric="error_rate",
        feature=None,
        value=0.12,
        threshold=0.05,
        comparison="gt",
        severity=severity,
        message="challenger error rate 12% > 5%",
        dedup_key=dedup_key,
        **kwargs,
    )
    assert alert is not None
    return alert


def only_delivery(alert: Alert, event: str = DeliveryEvent.FIRE) -> AlertDelivery:
    return AlertDelivery.objects.get(alert=alert, event=event)


# --- what each destination receives ---------------------------------------------------------------------------------


def test_a_slack_compatible_webhook_gets_text_and_blocks(engineer, receiver, version):
    destination(engineer, receiver, DestinationKind.SLACK)
    alert = raise_alert(version)
    delivery = run_delivery(only_delivery(alert).pk)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    [request] = receiver.received
    assert request.path == "/slack" and request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["text"].startswith(":rotating_light: [CRITICAL] credit-risk:1.0.0: challenger error rate 12% &gt; 5%")
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Model*\ncredit-risk" in fields and "*Version*\n1.0.0" in fields
    assert f"<https://forge.example/alerts/{alert.pk}/|Open the alert in Forge>" in str(body["blocks"][-1])
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.number, attempt.status_code, attempt.outcome, attempt.address) == (1, 200, "delivered", "127.0.0.1")
    assert attempt.duration_ms is not None and attempt.duration_ms >= 0


def test_pagerduty_gets_a_trigger_then_a_resolve_with_the_same_dedup_key(engineer, receiver, version):
    destination(engineer, receiver, DestinationKind.PAGERDUTY)
    alert = raise_alert(version)
    fire = only_delivery(alert)
    assert "routing_key" not in fire.payload  # the stored document never holds the key
    run_delivery(fire.pk)
    alert_resolve(dedup_key=alert.dedup_key, value=0.01, message="challenger error rate back to 1%")
    run_delivery(only_delivery(alert, DeliveryEvent.RESOLVE).pk)
    trigger, resolve = (r.json() for r in receiver.received)
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == f"forge-alert-{alert.pk}"
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "forge:credit-risk:1.0.0"
    assert payload["summary"] == "[CRITICAL] credit-risk:1.0.0: challenger error rate 12% > 5%"
    assert dt.datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")) == alert.fired_at
    assert payload["custom_details"]["metric"] == "error_rate" and payload["custom_details"]["value"] == 0.12
    assert trigger["links"] == [{"href": f"https://forge.example/alerts/{alert.pk}/", "text": "Alert in Forge"}]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": f"forge-alert-{alert.pk}"}


def test_the_generic_webhook_is_signed_over_timestamp_and_body(engineer, receiver, version):
    hook = destination(engineer, receiver)
    alert = raise_alert(version)
    delivery = run_delivery(only_delivery(alert).pk)
    [request] = receiver.received
    assert verify_signature(SECRET, request.headers, request.body)
    assert not verify_signature(SECRET, request.headers, request.body.replace(b"0.12", b"0.02"))  # tampered body
    assert not verify_signature("another-secret-0123456789", request.headers, request.body)
    stale = {**request.headers, "X-Forge-Timestamp": str(int(request.headers["X-Forge-Timestamp"]) - 301)}
    assert not verify_signature(SECRET, stale, request.body)  # outside the replay window
    assert request.headers["X-Forge-Event"] == "alert.fire"
    assert request.headers["X-Forge-Delivery"] == str(delivery.pk)
    body = request.json()
    assert body["event"] == "alert.fire" and body["delivery_id"] == delivery.pk
    alert_doc = body["alert"]
    assert (alert_doc["id"], alert_doc["status"], alert_doc["model"], alert_doc["version"]) == (
        alert.pk,
        "firing",
        "credit-risk",
        "1.0.0",
    )
    assert (alert_doc["metric"], alert_doc["value"], alert_doc["threshold"], alert_doc["severity"]) == (
        "error_rate",
        0.12,
        0.05,
        "critical",
    )
    assert hook.url_display == f"http://127.0.0.1:{receiver.port}/…"


# --- retries --------------------------------------------------------------------------------------------------------


def test_a_500_is_retried_with_backoff_and_every_attempt_is_logged(engineer, receiver, version, settings):
    settings.FORGE_ALERT_RETRY_BASE_S = 30.0
    destination(engineer, receiver)
    receiver.answer((500, {}, b"oops"), (503, {}, b"busy"))
    alert = raise_alert(version)
    delivery_id = only_delivery(alert).pk
    assert alert_delivery_attempt(delivery_id) == 30.0
    AlertDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
    assert alert_delivery_attempt(delivery_id) == 60.0  # doubled
    delivery = run_delivery(delivery_id)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 503, "retry"),
        (3, 200, "delivered"),
    ]
    assert attempts[0].error == "500 from the receiver" and attempts[0].response_excerpt == "oops"
    waits = [(a.next_retry_at - a.started_at).total_seconds() for a in attempts[:2]]
    assert 30 <= waits[0] < 32 and 60 <= waits[1] < 62
    assert attempts[2].next_retry_at is None and len(receiver.received) == 3


@pytest.mark.parametrize("header", ["seconds", "http-date"])
def test_a_429_waits_the_retry_after_the_receiver_asks_for(engineer, receiver, version, header):
    destination(engineer, receiver)
    later = timezone.now() + dt.timedelta(seconds=120)
    value = "45" if header == "seconds" else format_datetime(later, usegmt=True)
    receiver.answer((429, {"Retry-After": value}, b"slow down"))
    alert = raise_alert(version)
    delivery_id = only_delivery(alert).pk
    delay = alert_delivery_attempt(delivery_id)
    expected = 45 if header == "seconds" else 120
    assert delay is not None and expected - 2 <= delay <= expected  # the base backoff here is 0 s
    first = DeliveryAttempt.objects.get(delivery_id=delivery_id, number=1)
    assert (first.status_code, first.outcome, first.error) == (429, "retry", "429 Too Many Requests")
    assert expected - 2 <= (first.next_retry_at - first.started_at).total_seconds() <= expected + 1
    assert alert_delivery_attempt(delivery_id) is None  # not due yet: an early message does nothing
    assert run_delivery(delivery_id).status == DeliveryStatus.DELIVERED


def test_a_receiver_that_hangs_times_out_is_retried_and_never_holds_up_the_caller(
    engineer, receiver, version, django_capture_on_commit_callbacks
):
    destination(engineer, receiver)
    receiver.answer(HANG)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        alert = raise_alert(version)
    # The alert is recorded and its delivery queued for a worker; nothing was sent from the caller's thread.
    assert receiver.received == [] and len(queued) == 1
    delivery_id = only_delivery(alert).pk
    assert AlertDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING
    assert alert_delivery_attempt(delivery_id) is not None
    assert receiver.hanging.is_set()
    first = DeliveryAttempt.objects.get(delivery_id=delivery_id, number=1)
    assert first.outcome == AttemptOutcome.RETRY and first.status_code is None
    assert first.error == "timed out waiting for the answer (0.5 s)"
    receiver.release()
    delivery = run_delivery(delivery_id)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_total_timeout(engineer, version, settings):
    settings.FORGE_ALERT_TOTAL_TIMEOUT_S = 1.0
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                if stop.wait(0.2):  # one byte every 0.2 s: each read is within the 0.5 s read timeout
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        alert_destination_create(
            actor=engineer,
            name="slow",
            kind="webhook",
            url=f"http://127.0.0.1:{listener.getsockname()[1]}/",
            signing_secret=SECRET,
        )
        alert = raise_alert(version)
        alert_delivery_attempt(only_delivery(alert).pk)
    finally:
        stop.set()
        listener.close()
    attempt = DeliveryAttempt.objects.get(delivery__alert=alert)
    assert attempt.outcome == AttemptOutcome.RETRY
    assert attempt.error == "no complete answer within 1 s (total timeout)"
    assert attempt.duration_ms < 2500


def test_it_gives_up_after_the_last_attempt(engineer, receiver, version, settings):
    settings.FORGE_ALERT_MAX_ATTEMPTS = 3
    destination(engineer, receiver)
    receiver.answer(*[(502, {}, b"bad gateway")] * 5)
    alert = raise_alert(version)
    delivery = run_delivery(only_delivery(alert).pk)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    assert delivery.last_error == "502 from the receiver (gave up after 3 attempts)" and delivery.finished_at
    assert [a.outcome for a in delivery.attempt_rows.order_by("number")] == ["retry", "retry", "failed"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((400, {}, b"invalid_payload"), "400 from the receiver (not retried: the request itself was refused)"),
        ((404, {}, b"no_service"), "404 from the receiver (not retried: the request itself was refused)"),
        ((302, {"Location": "http://169.254.169.254/"}, b""), "redirects are not followed"),
    ],
)
def test_a_refusal_or_a_redirect_is_final(engineer, receiver, version, answer, error):
    destination(engineer, receiver)
    receiver.answer(answer)
    alert = raise_alert(version)
    delivery = run_delivery(only_delivery(alert).pk)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert error in delivery.last_error and len(receiver.received) == 1  # the redirect was not followed


def test_a_refused_connection_is_retried(engineer, version):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    alert_destination_create(actor=engineer, name="down", kind="slack", url=f"http://127.0.0.1:{port}/hook")
    alert = raise_alert(version)
    delivery_id = only_delivery(alert).pk
    assert alert_delivery_attempt(delivery_id) is not None
    attempt = DeliveryAttempt.objects.get(delivery_id=delivery_id)
    assert (attempt.outcome, attempt.error) == ("retry", "connection refused")


# --- addresses at delivery time -------------------------------------------------------------------------------------


def test_the_address_is_checked_again_at_delivery_and_the_connection_goes_to_the_checked_one(
    engineer, receiver, version, monkeypatch, settings
):
    answers = {"hooks.example.com": ["93.184.215.14"]}
    monkeypatch.setattr("governance.services.alert_destinations.resolve_host", lambda host, port: answers.get(host, []))
    destination_row = alert_destination_create(
        actor=engineer,
        name="rebinding",
        kind="slack",
        url=f"https://hooks.example.com:{receiver.port}/services/T0/B0/secret",
    )
    answers["hooks.example.com"] = ["10.0.0.9"]  # the name now points inside the network
    alert = raise_alert(version)
    delivery = run_delivery(only_delivery(alert).pk)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.last_error == (
        "refused at delivery: hooks.example.com resolves to 10.0.0.9: 10.0.0.9 is a private address "
        "(allow its network with FORGE_ALERT_ALLOWED_NETWORKS)."
    )
    assert receiver.received == []
    # The connection goes to the address that was checked, while the request names the host.
    answers["hooks.example.com"] = ["127.0.0.1"]
    alert_destination_delete(destination=destination_row, actor=engineer)
    alert_destination_create(
        actor=engineer, name="pinned", kind="slack", url=f"http://hooks.example.com:{receiver.port}/pinned"
    )
    second = raise_alert(version, dedup_key="second")
    assert run_delivery(only_delivery(second).pk).status == DeliveryStatus.DELIVERED
    [request] = receiver.received
    assert request.headers["Host"] == f"hooks.example.com:{receiver.port}" and request.path == "/pinned"


def test_https_is_verified_against_the_urls_host_while_connecting_to_the_checked_address(
    engineer, version, monkeypatch, settings, tmp_path
):
    cert, key = _self_signed(tmp_path, "hooks.example.com")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = start_receiver(tls=context)
    try:
        settings.FORGE_ALERT_CA_BUNDLE = str(cert)
        monkeypatch.setattr(
            "governance.services.alert_destinations.resolve_host",
            lambda host, port: {"hooks.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]}[host],
        )
        alert_destination_create(
            actor=engineer, name="tls", kind="slack", url=receiver.url("/tls", host="hooks.example.com")
        )
        alert = raise_alert(version)
        assert run_delivery(only_delivery(alert).pk).status == DeliveryStatus.DELIVERED
        assert receiver.received[0].headers["Host"] == f"hooks.example.com:{receiver.port}"
        # A certificate for another name is refused (and retried, as a certificate may be mid-renewal).
        alert_destination_create(
            actor=engineer, name="wrong name", kind="slack", url=receiver.url("/tls", host="other.example.com")
        )
        other = raise_alert(version, dedup_key="other")
        wrong = AlertDelivery.objects.get(alert=other, destination__name="wrong name")
        assert alert_delivery_attempt(wrong.pk) is not None
        attempt = DeliveryAttempt.objects.get(delivery=wrong)
        assert attempt.error.startswith("TLS certificate not accepted") and "other.example.com" in attempt.error
    finally:
        receiver.close()


def _self_signed(folder, host):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# --- order, cancellation, lost work ---------------------------------------------------------------------------------


def test_a_resolve_waits_until_its_trigger_has_been_delivered(engineer, receiver, version):
    destination(engineer, receiver, DestinationKind.PAGERDUTY)
    receiver.answer((500, {}, b""))
    alert = raise_alert(version)
    fire = only_delivery(alert)
    assert alert_delivery_attempt(fire.pk) is not None  # the trigger failed once and waits for its retry
    alert_resolve(dedup_key=alert.dedup_key)
    resolve = only_delivery(alert, DeliveryEvent.RESOLVE)
    wait = alert_delivery_attempt(resolve.pk)
    assert wait is not None and wait >= 2
    assert AlertDelivery.objects.get(pk=resolve.pk).attempts == 0 and len(receiver.received) == 1
    run_delivery(fire.pk)
    assert run_delivery(resolve.pk).status == DeliveryStatus.DELIVERED
    assert [r.json()["event_action"] for r in receiver.received] == ["trigger", "trigger", "resolve"]


def test_a_switched_off_or_deleted_destination_gets_nothing_more(engineer, receiver, version):
    hook = destination(engineer, receiver)
    alert = raise_alert(version)
    pending = only_delivery(alert)
    hook.enabled = False
    hook.save()
    run_delivery(pending.pk)
    pending.refresh_from_db()
    assert (pending.status, pending.last_error) == ("cancelled", "the destination is switched off")
    hook.enabled = True
    hook.save()
    second = only_delivery(raise_alert(version, dedup_key="second"))
    alert_destination_delete(destination=hook, actor=engineer)
    second.refresh_from_db()
    assert (second.status, second.last_error, second.destination_name) == (
        "cancelled",
        "the destination was deleted",
        "webhook receiver",
    )
    assert receiver.received == []


def test_the_sweep_takes_back_an_attempt_whose_worker_died_and_resends_lost_messages(
    engineer, receiver, version, monkeypatch
):
    sent: list[int] = []
    monkeypatch.setattr(
        alert_delivery, "delivery_enqueue", lambda delivery_id, countdown=None: sent.append(delivery_id)
    )
    destination(engineer, receiver)
    stuck = only_delivery(raise_alert(version))
    lost = only_delivery(raise_alert(version, dedup_key="lost"))
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    AlertDelivery.objects.filter(pk=stuck.pk).update(status="sending", attempts=1, claimed_at=long_ago)
    DeliveryAttempt.objects.create(delivery=stuck, number=1, started_at=long_ago)
    AlertDelivery.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    assert alert_deliveries_sweep() == {"taken_back": 1, "resent": 2}
    stuck.refresh_from_db()
    assert stuck.status == "pending" and stuck.last_error == "the worker stopped during an attempt"
    assert DeliveryAttempt.objects.get(delivery=stuck).outcome == AttemptOutcome.LOST
    assert set(sent) == {stuck.pk, lost.pk}
    assert run_delivery(stuck.pk).attempts == 2


def test_a_secret_no_key_can_open_fails_the_delivery_with_what_to_do(engineer, receiver, version, settings):
    destination(engineer, receiver)
    alert = raise_alert(version)
    settings.FORGE_SECRETS_KEYS = ["kPh1mJ0x9u1qPqTqQ7fQm0n3dA0wX9Wc6gqkZbJ5Z2E="]  # another key than the one used
    delivery = run_delivery(only_delivery(alert).pk)
    assert delivery.status == DeliveryStatus.FAILED and "enter it again" in delivery.last_error
    assert receiver.received == []


def test_the_destination_chosen_by_model_and_severity(engineer, receiver, version):
    other = make_version(name="fraud", version="2.0.0")
    scoped = destination(engineer, receiver, min_severity="critical")
    scoped.model_scope.set([version.model])
    everything = destination(engineer, receiver, DestinationKind.SLACK)
    critical = raise_alert(version, severity="critical", dedup_key="a")
    warning = raise_alert(version, severity="warning", dedup_key="b")
    elsewhere = raise_alert(other, severity="critical", dedup_key="c")
    chosen = {
        alert.pk: set(AlertDelivery.objects.filter(alert=alert).values_list("destination_id", flat=True))
        for alert in (critical, warning, elsewhere)
    }
    assert chosen == {
        critical.pk: {scoped.pk, everything.pk},
        warning.pk: {everything.pk},
        elsewhere.pk: {everything.pk},
    }
    assert AuditEvent.objects.filter(action="alert.fire").count() == 3


def test_the_receiver_check_in_the_api_docs_accepts_a_real_delivery_once(engineer, receiver, version):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    snippet = next(block for block in docs.split("```python\n")[1:] if "def forge_signature_ok" in block)
    namespace: dict = {}
    exec(snippet.split("```", 1)[0], namespace)  # the documented code, as a receiver would paste it
    check = namespace["forge_signature_ok"]
    destination(engineer, receiver)
    run_delivery(only_delivery(raise_alert(version)).pk)
    [request] = receiver.received
    seen: set[str] = set()
    assert check(SECRET, request.headers, request.body, seen)
    assert not check(SECRET, request.headers, request.body, seen)  # the same delivery again: a replay
    assert not check(SECRET, request.headers, request.body + b" ", set())
    assert not check("wrong-secret-0123456789", request.headers, request.body, set())
