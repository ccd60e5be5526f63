"""Deliveries: one row per notification and destination, sent by `governance.deliver_alert` on the `default` queue
after the transaction that made it commits, and logged attempt by attempt.

An attempt is claimed with a conditional UPDATE (a duplicate message does nothing), checks the destination's URL
again on the addresses its name has now, and sends to the address it checked. Outcomes:
- 2xx: delivered;
- 429: retried after the Retry-After the receiver asked for (seconds or an HTTP date; at most
  FORGE_ALERT_RETRY_MAX_S), or after the backoff when it gives none;
- 5xx, a timeout, a refused or reset connection, a name that does not resolve: retried with exponential backoff,
  FORGE_ALERT_RETRY_BASE_S doubling up to FORGE_ALERT_RETRY_MAX_S, until FORGE_ALERT_MAX_ATTEMPTS;
- any other 4xx, a redirect (never followed), an address the policy refuses, an unreadable secret: failed at once.
A resolve waits until the fire notification to the same destination has finished, so PagerDuty never gets the
resolve of an incident before its trigger. Beat's sweep re-sends due deliveries whose message was lost (Redis
restarted) and takes back an attempt whose worker died.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from governance.alerting import http, payloads
from governance.alerting.addresses import AddressRefused
from governance.alerting.secrets import SecretUnreadable
from governance.models import (
    SEVERITY_RANK,
    Alert,
    AlertDelivery,
    AlertDestination,
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryEvent,
    DeliveryStatus,
    DestinationKind,
    Severity,
)
from governance.services.alert_destinations import destination_secrets, url_check

logger = logging.getLogger(__name__)

DELIVER_TASK = "governance.deliver_alert"
USER_AGENT = "Forge-Alerts/1.0"
LOST_MESSAGE_GRACE = timedelta(seconds=60)  # a due delivery this late has lost its message: the sweep re-sends it
RESOLVE_WAIT_S = 2.0  # how often a resolve looks again at its unfinished fire notification
SWEEP_BATCH = 500


# --- what is sent ---------------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _alert_url(alert_id: int | None) -> str:
    if not settings.FORGE_PUBLIC_URL or alert_id is None:
        return ""
    return settings.FORGE_PUBLIC_URL + reverse("alerts:detail", kwargs={"alert_id": alert_id})


def notice_for(alert: Alert, event: str) -> payloads.Notice:
    return payloads.Notice(
        event=event,
        alert_id=alert.pk,
        severity=alert.severity,
        source=alert.source,
        model=alert.model.name,
        version=alert.version.version if alert.version is not None else "",
        rule=alert.rule_name,
        metric=alert.metric,
        feature=alert.feature,
        value=alert.resolve_value if event == DeliveryEvent.RESOLVE else alert.value,
        threshold=alert.threshold,
        comparison=alert.comparison,
        message=(alert.resolve_message or alert.message) if event == DeliveryEvent.RESOLVE else alert.message,
        dedup_key=alert.dedup_key,
        fired_at=_iso(alert.fired_at),
        resolved_at=_iso(alert.resolved_at),
        url=_alert_url(alert.pk),
    )


def test_notice(destination: AlertDestination, now: datetime) -> payloads.Notice:
    return payloads.Notice(
        event="test",
        alert_id=None,
        severity=Severity.INFO,
        source="test",
        model="",
        version="",
        rule="",
        metric="",
        feature="",
        value=None,
        threshold=None,
        comparison="",
        message=f"A test notification to {destination.name}, sent from Forge.",
        dedup_key=f"forge-test-{destination.pk}",
        fired_at=_iso(now),
        resolved_at="",
        url="",
    )


def pagerduty_dedup_key(delivery: AlertDelivery) -> str:
    """One PagerDuty incident per Forge alert: its trigger and its resolve carry the same key."""
    if delivery.alert_id is None:
        return f"forge-test-{delivery.destination_id}-{delivery.pk}"
    return f"forge-alert-{delivery.alert_id}"


def _payload(delivery: AlertDelivery, notice: payloads.Notice) -> dict[str, Any]:
    """The document as stored: everything but a PagerDuty routing key, which is added when sending."""
    if delivery.destination_kind == DestinationKind.SLACK:
        return payloads.slack_body(notice)
    if delivery.destination_kind == DestinationKind.PAGERDUTY:
        body = payloads.pagerduty_body(notice, routing_key="", dedup_key=pagerduty_dedup_key(delivery))
        body.pop("routing_key")
        return body
    return payloads.webhook_body(notice, delivery_id=delivery.pk)


def _new_delivery(
    destination: AlertDestination, *, alert: Alert | None, event: str, notice: payloads.Notice, actor: Any = None
) -> AlertDelivery:
    delivery = AlertDelivery.objects.create(
        alert=alert,
        destination=destination,
        destination_name=destination.name,
        destination_kind=destination.kind,
        event=event,
        max_attempts=max(1, settings.FORGE_ALERT_MAX_ATTEMPTS),
        next_attempt_at=timezone.now(),
        payload={},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    delivery.payload = _payload(delivery, notice)
    delivery.save(update_fields=["payload"])
    transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    return delivery


def destinations_for(alert: Alert) -> list[AlertDestination]:
    """Enabled destinations that take this alert's model and severity."""
    rank = SEVERITY_RANK[Severity(alert.severity)]
    chosen = []
    for destination in AlertDestination.objects.filter(enabled=True).prefetch_related("model_scope"):
        scope = {m.pk for m in destination.model_scope.all()}
        if scope and alert.model_id not in scope:
            continue
        if SEVERITY_RANK[Severity(destination.min_severity)] > rank:
            continue
        chosen.append(destination)
    return chosen


def deliveries_create(*, alert: Alert, event: str) -> list[AlertDelivery]:
    """Delivery rows for an alert that fired (to every matching destination) or was resolved (to the destinations
    that were told it fired, if they still exist and are enabled); each is sent after the transaction commits."""
    if event == DeliveryEvent.FIRE:
        destinations = destinations_for(alert)
    else:
        told = AlertDelivery.objects.filter(alert=alert, event=DeliveryEvent.FIRE, destination__isnull=False)
        told = told.exclude(status=DeliveryStatus.CANCELLED)
        destinations = list(
            AlertDestination.objects.filter(pk__in=told.values("destination_id"), enabled=True).order_by("pk")
        )
    notice = notice_for(alert, event)
    return [_new_delivery(d, alert=alert, event=event, notice=notice) for d in destinations]


def alert_destination_test(*, destination: AlertDestination, actor: Any) -> AlertDelivery:
    """Send a test notification (also to a disabled destination: that is how one is tried before switching it on).
    Its attempts are logged like any delivery's."""
    with transaction.atomic():
        return _new_delivery(
            destination,
            alert=None,
            event=DeliveryEvent.TEST,
            notice=test_notice(destination, timezone.now()),
            actor=actor,
        )


def delivery_enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Send the delivery's message. A failure to reach the broker loses nothing: the sweep re-sends due deliveries."""
    from forge_site.celery import app

    try:
        app.send_task(DELIVER_TASK, args=[delivery_id], queue="default", countdown=countdown, retry=False)
    except Exception:
        logger.warning("could not queue alert delivery %s; the sweep will re-send it", delivery_id, exc_info=True)


# --- one attempt ----------------------------------------------------------------------------------------------------


@dataclass
class _Sent:
    outcome: str  # delivered | retry | failed
    error: str = ""
    status_code: int | None = None
    duration_ms: float | None = None
    address: str = ""
    excerpt: str = ""
    retry_after_s: float | None = None


def backoff_s(attempt: int) -> float:
    """The wait after failed attempt number `attempt` (1-based): the base, doubling, capped."""
    return float(min(settings.FORGE_ALERT_RETRY_MAX_S, settings.FORGE_ALERT_RETRY_BASE_S * 2 ** (attempt - 1)))


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _cancel(delivery: AlertDelivery, why: str) -> None:
    AlertDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, finished_at=timezone.now(), last_error=why
    )


def _send(delivery: AlertDelivery, destination: AlertDestination) -> _Sent:
    try:
        url, secret = destination_secrets(destination)
    except SecretUnreadable as exc:
        return _Sent("failed", error=str(exc))
    try:
        target, addresses = url_check(url)
    except AddressRefused as exc:
        if exc.transient:
            return _Sent("retry", error=exc.message)
        return _Sent("failed", error=f"refused at delivery: {exc.message}")
    body_doc = dict(delivery.payload)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Accept": "application/json"}
    if delivery.destination_kind == DestinationKind.PAGERDUTY:
        body_doc = {"routing_key": secret, **body_doc}
    body = payloads.encode(body_doc)
    if delivery.destination_kind == DestinationKind.WEBHOOK:
        headers.update(
            payloads.signed_headers(
                secret=secret, timestamp=int(time.time()), body=body, event=delivery.event, delivery_id=delivery.pk
            )
        )
    answer = http.post(
        target=target,
        address=addresses[0],
        body=body,
        headers=headers,
        timeouts=http.Timeouts(
            connect_s=settings.FORGE_ALERT_CONNECT_TIMEOUT_S,
            read_s=settings.FORGE_ALERT_READ_TIMEOUT_S,
            total_s=settings.FORGE_ALERT_TOTAL_TIMEOUT_S,
        ),
        ca_file=settings.FORGE_ALERT_CA_BUNDLE,
    )
    sent = _Sent(
        "retry",
        status_code=answer.status,
        duration_ms=answer.duration_ms,
        address=str(addresses[0]),
        excerpt=answer.body_excerpt,
        error=answer.error,
    )
    status = answer.status
    if status is None:
        return sent  # timeout, refused, reset: retried
    if 200 <= status < 300:
        sent.outcome, sent.error = "delivered", ""
    elif status == 429:
        sent.error = "429 Too Many Requests"
        sent.retry_after_s = retry_after_s(answer.headers.get("retry-after"), timezone.now())
    elif status >= 500:
        sent.error = f"{status} from the receiver"
    elif 300 <= status < 400:
        location = answer.headers.get("location", "")
        sent.outcome, sent.error = "failed", f"{status} redirect to {location[:200]!r}: redirects are not followed"
    else:
        sent.outcome, sent.error = "failed", f"{status} from the receiver (not retried: the request itself was refused)"
    return sent


def alert_delivery_attempt(delivery_id: int) -> float | None:
    """Make one attempt of a due delivery and log it. Returns the seconds until the next attempt when it is to be
    retried (the task queues it), else None (delivered, failed, cancelled, or not this message's turn)."""
    now = timezone.now()
    delivery = AlertDelivery.objects.select_related("destination").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None  # an early duplicate: the message sent for the due time (or the sweep) makes the attempt
    destination = delivery.destination
    if destination is None:
        _cancel(delivery, "the destination was deleted")
        return None
    if not destination.enabled and delivery.event != DeliveryEvent.TEST:
        _cancel(delivery, "the destination is switched off")
        return None
    if delivery.event == DeliveryEvent.RESOLVE and delivery.alert_id is not None:
        unfinished = AlertDelivery.objects.filter(
            alert_id=delivery.alert_id,
            destination_id=delivery.destination_id,
            event=DeliveryEvent.FIRE,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING],
        ).first()
        if unfinished is not None:
            wait = RESOLVE_WAIT_S
            if unfinished.next_attempt_at is not None:
                wait = max(wait, (unfinished.next_attempt_at - now).total_seconds() + RESOLVE_WAIT_S)
            AlertDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
                next_attempt_at=now + timedelta(seconds=wait)
            )
            return wait
    claimed = AlertDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    if claimed != 1:
        return None  # another message of this delivery got there first
    delivery.refresh_from_db(fields=["attempts", "status"])
    attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
    try:
        sent = _send(delivery, destination)
    except Exception as exc:  # a defect must not leave the delivery 'sending' forever
        logger.exception("alert delivery %s failed unexpectedly", delivery.pk)
        sent = _Sent("failed", error=f"internal error: {type(exc).__name__}")
    return _record(delivery, attempt, sent)


def _record(delivery: AlertDelivery, attempt: DeliveryAttempt, sent: _Sent) -> float | None:
    now = timezone.now()
    delay: float | None = None
    outcome = sent.outcome
    if outcome == "retry":
        if delivery.attempts >= delivery.max_attempts:
            outcome = "failed"
            sent.error = f"{sent.error} (gave up after {delivery.attempts} attempts)"
        else:
            delay = backoff_s(delivery.attempts)
            if sent.retry_after_s is not None:
                delay = min(sent.retry_after_s, settings.FORGE_ALERT_RETRY_MAX_S)
    next_at = now + timedelta(seconds=delay) if delay is not None else None
    attempt.duration_ms = sent.duration_ms
    attempt.address = sent.address
    attempt.status_code = sent.status_code
    attempt.error = sent.error
    attempt.response_excerpt = sent.excerpt[:500]
    attempt.outcome = {"delivered": AttemptOutcome.DELIVERED, "retry": AttemptOutcome.RETRY}.get(
        outcome, AttemptOutcome.FAILED
    )
    attempt.next_retry_at = next_at
    status = {"delivered": DeliveryStatus.DELIVERED, "retry": DeliveryStatus.PENDING}.get(
        outcome, DeliveryStatus.FAILED
    )
    with transaction.atomic():
        attempt.save()
        AlertDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
            status=status,
            next_attempt_at=next_at,
            last_status_code=sent.status_code,
            last_error=sent.error,
            finished_at=None if status == DeliveryStatus.PENDING else now,
        )
    if outcome != "delivered":
        logger.info("alert delivery %s attempt %s: %s", delivery.pk, attempt.number, sent.error or outcome)
    return delay


# --- the sweep ------------------------------------------------------------------------------------------------------


def alert_deliveries_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Take back attempts whose worker died, and re-send the messages of deliveries long past due."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.FORGE_ALERT_TOTAL_TIMEOUT_S + 120)
    taken_back = 0
    retry: list[int] = []
    for delivery in AlertDelivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale_before)[
        :SWEEP_BATCH
    ]:
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery=delivery, outcome=AttemptOutcome.SENDING).update(
                outcome=AttemptOutcome.LOST, error="the worker stopped during this attempt"
            )
            final = delivery.attempts >= delivery.max_attempts
            took = AlertDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
                status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
                next_attempt_at=None if final else now,
                finished_at=now if final else None,
                last_error="the worker stopped during an attempt" + (" (no attempts left)" if final else ""),
            )
            taken_back += took
            if took and not final:
                retry.append(delivery.pk)
    due = AlertDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now - LOST_MESSAGE_GRACE
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    resend = [*retry, *due]
    for delivery_id in resend:
        delivery_enqueue(delivery_id)
    return {"taken_back": taken_back, "resent": len(resend)}
