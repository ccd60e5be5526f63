"""The audit trail: append an event in the caller's transaction, and verify the hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from forge_site.logs import current_request_id
from forge_site.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


def _canonical(value: Any) -> Any:
    """Round-trip through JSON so what is hashed is exactly what the JSON column stores and returns."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder)) if value is not None else None


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    before: Any,
    after: Any,
    request_id: str,
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "before": before,
        "after": after,
        "request_id": request_id,
        "prev": prev_hash,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    """The stored event's fields that its hash covers, as event_hash takes them."""
    return {
        "seq": event.seq,
        "at": event.at,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
    }


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
    actor_label: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change, so both commit or neither."""
    if obj is not None:
        object_type = object_type or f"{obj._meta.app_label}.{obj._meta.model_name}"
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:255]
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    label = actor_label or (user.get_username() if user is not None else SYSTEM_ACTOR)
    with transaction.atomic():
        # The UPDATE takes the head row's lock (PostgreSQL) or the write lock (SQLite) before reading it,
        # so concurrent appends line up and the chain never forks.
        AuditHead.objects.get_or_create(pk=1)
        AuditHead.objects.filter(pk=1).update(last_seq=models.F("last_seq") + 1)
        head = AuditHead.objects.get(pk=1)
        at = timezone.now()
        fields = {
            "seq": head.last_seq,
            "at": at,
            "actor_label": label[:150],
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id)[:128],
            "object_repr": object_repr[:255],
            "before": _canonical(before),
            "after": _canonical(after),
            "request_id": request_id if request_id is not None else current_request_id.get(),
            "prev_hash": head.last_hash,
        }
        digest = event_hash(**fields)
        event = AuditEvent.objects.create(actor=user, hash=digest, **fields)  # type: ignore[misc]
        AuditHead.objects.filter(pk=1).update(last_hash=digest)
    return event


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def audit_verify_chain(batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events were checked and the first broken link, if any.

    The head is read first and only events up to it are checked, so appends that commit while the walk runs
    (a cron check on a live system) are not mistaken for a broken chain.
    """
    head = AuditHead.objects.filter(pk=1).first()
    upto = head.last_seq if head is not None else None
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in _iter_events(batch_size, upto):
        if event.seq != expected_seq:
            return checked, ChainBreak(event.seq, f"expected event #{expected_seq}, found #{event.seq} (a gap)")
        if event.prev_hash != prev_hash:
            return checked, ChainBreak(event.seq, "prev_hash does not match the hash of the event before it")
        if event_hash(**hashed_fields(event)) != event.hash:
            return checked, ChainBreak(event.seq, "content does not match its hash (the event was altered)")
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    if head is None:
        if checked:
            return checked, ChainBreak(checked, "the chain's head record is missing")
        return checked, None
    if head.last_seq != checked:
        return checked, ChainBreak(
            checked + 1, f"the head records {head.last_seq} events but the chain ends at #{checked} (events removed)"
        )
    if head.last_hash != prev_hash:
        return checked, ChainBreak(checked, "the newest event's hash differs from the one recorded in the head")
    return checked, None


def _iter_events(batch_size: int, upto: int | None) -> Iterator[AuditEvent]:
    last = 0
    while True:
        events = AuditEvent.objects.filter(seq__gt=last)
        if upto is not None:
            events = events.filter(seq__lte=upto)
        batch = list(events.order_by("seq")[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].seq
