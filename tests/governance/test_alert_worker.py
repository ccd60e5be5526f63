"""Alert delivery through a real Celery worker (fixture celery_worker): retries with the wait the receiver asks
for, and a receiver that hangs holds up neither the request that raised the alert nor later ones."""

from __future__ import annotations

import pytest
from django.db import transaction

from governance.models import AlertDelivery, DeliveryStatus
from governance.services.alerts import alert_raise
from tests.api.helpers import bearer_client
from tests.conftest import wait_for
from tests.governance.alert_helpers import HANG, make_version, start_receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def receiver(settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True  # for saving the destination here; the worker has its own settings
    server = start_receiver()
    yield server
    server.close()


def _finished(delivery_id: int) -> AlertDelivery | None:
    delivery = AlertDelivery.objects.get(pk=delivery_id)
    return delivery if delivery.is_final else None


def test_the_worker_retries_a_500_and_waits_the_retry_after_of_a_429(celery_worker, engineer, receiver):
    client = bearer_client(engineer)
    hook = client.post(
        "/api/v1/alerts/destinations/",
        {"name": "local", "kind": "webhook", "url": receiver.url(), "signing_secret": "s" * 32},
        format="json",
    ).json()
    receiver.answer((500, {}, b"oops"), (429, {"Retry-After": "1"}, b"slow down"))
    sent = client.post(f"/api/v1/alerts/destinations/{hook['id']}/test/")
    assert sent.status_code == 202
    delivery = wait_for(lambda: _finished(sent.json()["id"]), timeout=60)
    assert delivery.status == DeliveryStatus.DELIVERED
    log = client.get(f"/api/v1/alerts/deliveries/{delivery.pk}/").json()["attempt_log"]
    assert [(a["number"], a["status_code"], a["outcome"]) for a in log] == [
        (1, 500, "retry"),
        (2, 429, "retry"),
        (3, 200, "delivered"),
    ]
    assert all(a["duration_ms"] is not None and a["address"] == "127.0.0.1" for a in log)
    first, second, third = receiver.received
    assert third.at - second.at >= 1.0  # the receiver asked for a second, and got it
    assert first.headers["X-Forge-Delivery"] == third.headers["X-Forge-Delivery"] == str(delivery.pk)


def test_a_hanging_destination_blocks_nobody_and_is_retried(celery_worker, engineer, receiver):
    version = make_version(owner=engineer)
    client = bearer_client(engineer)
    hook = client.post(
        "/api/v1/alerts/destinations/", {"name": "slow", "kind": "slack", "url": receiver.url()}, format="json"
    ).json()
    receiver.answer(HANG)
    with transaction.atomic():
        alert = alert_raise(
            model=version.model,
            version=version,
            source="rollout",
            metric="error_rate",
            feature=None,
            value=0.3,
            threshold=0.1,
            severity="critical",
            message="guardrail",
            dedup_key="rollout:1:error_rate",
        )
    assert alert is not None
    assert receiver.hanging.wait(60)  # the worker is inside the request the receiver holds open
    # Meanwhile the console answers at once: a request that queues another notification returns 202.
    assert client.post(f"/api/v1/alerts/destinations/{hook['id']}/test/").status_code == 202
    assert not receiver.released.is_set()
    delivery = wait_for(lambda: _finished(AlertDelivery.objects.get(alert=alert).pk), timeout=60)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    first = delivery.attempt_rows.get(number=1)
    assert (first.outcome, first.status_code, first.error) == ("retry", None, "timed out waiting for the answer (1 s)")
    receiver.release()
    test_delivery = wait_for(lambda: _finished(AlertDelivery.objects.get(event="test").pk), timeout=60)
    assert test_delivery.status == DeliveryStatus.DELIVERED
