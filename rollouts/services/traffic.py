"""Traffic: assigning requests, recording outcomes, and the per-minute aggregates every writer adds to.

The serving process (issue 13's predict, built separately) calls traffic_flush with what it counted; the console
calls rollout_assign and outcome_record. Every count lands in an ArmMinute row keyed by (rollout, arm, minute,
writer), so writers never contend for one another's rows and any window is the sum of its rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from rollouts import request_ids
from rollouts.aggregates import ArmWindow, LatencyHistogram
from rollouts.models import SERVING_STATES, ArmMinute, Outcome, Rollout, RolloutState, RolloutUnit
from rollouts.routing import Router, UnitTooLong
from rollouts.services.common import RolloutError

CONSOLE_WRITER = "console"


def minute_of(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def unix_minute(instant: datetime) -> int:
    return int(instant.timestamp()) // 60


def from_unix_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def request_id_key() -> bytes:
    return request_ids.signing_key(settings.SECRET_KEY)


def predict_url(rollout: Rollout) -> str:
    """Where the serving process answers this rollout's predict (settings.FORGE_SERVING_URL)."""
    return f"{settings.FORGE_SERVING_URL.rstrip('/')}/api/v1/rollouts/{rollout.pk}/predict/"


def routed_share(rollout: Rollout) -> float:
    """The challenger's share requests get now: the plan's in running or awaiting approval, else 0."""
    return rollout.challenger_share if rollout.state in SERVING_STATES else 0.0


def router_for(rollout: Rollout) -> Router:
    return Router(rollout.salt, routed_share(rollout))


def _increment(rollout_id: int, arm: str, minute: datetime, writer: str, deltas: dict[str, Any]) -> None:
    """Add counts to a writer's row for the minute: one UPDATE, or an INSERT for the minute's first count."""
    key = {"rollout_id": rollout_id, "arm": arm, "minute": minute, "writer": writer}
    changes = {name: F(name) + value for name, value in deltas.items()}
    with transaction.atomic():
        if ArmMinute.objects.filter(**key).update(**changes, updated_at=timezone.now()):
            return
        try:
            with transaction.atomic():
                ArmMinute.objects.create(**key, **deltas)
                return
        except IntegrityError:  # a concurrent first count inserted the row: add to it
            ArmMinute.objects.filter(**key).update(**changes, updated_at=timezone.now())


@dataclass(frozen=True)
class AssignResult:
    rollout_id: int
    arm: str
    version: str
    assignment: str  # "sticky" (from the unit id) or "random" (no unit id)
    request_id: str
    challenger_share: float
    unit_key: str


def rollout_assign(*, rollout: Rollout, unit: str | None, now: datetime | None = None) -> AssignResult:
    """The arm for one request, without running a model (a gateway serves it); counted as an assignment."""
    if rollout.state not in (*SERVING_STATES, RolloutState.PAUSED):
        raise RolloutError(
            f"Rollout #{rollout.pk} is {rollout.get_state_display().lower()} and routes no traffic; "
            f"serve the champion alias of {rollout.model.name}.",
            code="not_routing",
            status=409,
        )
    if unit is not None and not isinstance(unit, str):
        raise RolloutError("unit must be a string.", field="unit")
    share = routed_share(rollout)
    try:
        assignment, point = Router(rollout.salt, share).assign_with_point(unit)
    except UnitTooLong as exc:
        raise RolloutError(str(exc), field="unit", code="unit_too_long") from exc
    now = now or timezone.now()
    minute = minute_of(now)
    request_id = request_ids.issue(request_id_key(), rollout.pk, assignment.arm, unix_minute(minute))
    counts: dict[str, Any] = {"assignments": 1, "share_sum": share / 100}
    if point is None:
        counts.update(unitless=1, unitless_share_sum=share / 100)
    with transaction.atomic():
        _increment(rollout.pk, assignment.arm, minute, CONSOLE_WRITER, counts)
        if point is not None:
            units_record(rollout_id=rollout.pk, units=[UnitSeen(point, assignment.arm, share, now)])
    version = rollout.challenger if assignment.arm == "challenger" else rollout.champion
    return AssignResult(
        rollout.pk, assignment.arm, version.version, assignment.assignment, request_id, share, rollout.unit_key
    )


def _outcome_values(success: Any, value: Any) -> tuple[bool | None, float | None]:
    if success is None and value is None:
        raise RolloutError('An outcome has "success" (true or false) or "value" (a number).', field="success")
    if success is not None and not isinstance(success, bool):
        raise RolloutError('"success" must be true or false.', field="success")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RolloutError('"value" must be a finite number.', field="value")
        value = float(value)
    return success, value


def outcome_record(
    *, rollout: Rollout, request_id: Any, success: Any = None, value: Any = None, writer: str = CONSOLE_WRITER
) -> tuple[Outcome, bool]:
    """Record a served request's outcome; (outcome, created). The same outcome sent again is accepted once.

    The request id says which arm served it and when (rollouts.request_ids), so the outcome is counted at once,
    even before the request's log row reaches the drift ingestion. An id this rollout never issued is refused
    (404) and counted on the rollout (rejected_outcomes); a second, different outcome for one request is a 409.
    """
    success, value = _outcome_values(success, value)
    if not isinstance(request_id, str) or not request_id:
        raise RolloutError("request_id is the id a predict or assign answer gave.", field="request_id")
    issued = request_ids.parse(request_id_key(), request_id)
    if issued is None or issued.rollout_id != rollout.pk:
        Rollout.objects.filter(pk=rollout.pk).update(rejected_outcomes=F("rejected_outcomes") + 1)
        raise RolloutError(
            f"Rollout #{rollout.pk} never issued the request id {request_id[:80]!r}: send the request_id its "
            "predict or assign answer carried.",
            field="request_id",
            code="unknown_request",
            status=404,
        )
    served_minute = from_unix_minute(issued.minute)
    with transaction.atomic():
        try:
            with transaction.atomic():
                outcome = Outcome.objects.create(
                    rollout=rollout,
                    request_id=request_id,
                    arm=issued.arm,
                    served_minute=served_minute,
                    success=success,
                    value=value,
                )
        except IntegrityError:
            outcome = Outcome.objects.get(request_id=request_id)
            if (outcome.success, outcome.value) == (success, value):
                return outcome, False  # a retry of the same outcome
            raise RolloutError(
                f"Request {request_id} already has an outcome (success={outcome.success}, value={outcome.value}); "
                "an outcome is recorded once and not changed.",
                field="request_id",
                code="duplicate",
                status=409,
            ) from None
        deltas: dict[str, Any] = {}
        if success is not None:
            deltas.update(success_count=1, successes=int(success))
        if value is not None:
            deltas.update(value_count=1, value_sum=value, value_sum_sq=value * value)
        _increment(rollout.pk, issued.arm, served_minute, writer, deltas)
    return outcome, True


@dataclass(frozen=True)
class UnitSeen:
    """A unit routed for the first time (as far as its writer knows): its point, arm and the share it was routed at."""

    point: int  # Router.assign_with_point's signed 64-bit point
    arm: str
    share: float  # percent
    seen_at: datetime


def units_record(*, rollout_id: int, units: list[UnitSeen]) -> None:
    """Record units once each (a unit already recorded keeps its first arm and share): the sample-ratio check's
    counts. A writer may send a unit again (after a restart, from another process); the database keeps the first."""
    RolloutUnit.objects.bulk_create(
        [
            RolloutUnit(rollout_id=rollout_id, point=u.point, arm=u.arm, share=u.share, first_seen=u.seen_at)
            for u in units
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


@dataclass
class TrafficDelta:
    """What one writer counted for one arm of one rollout in one minute (the serving process's flush unit)."""

    rollout_id: int
    arm: str
    minute: datetime
    window: ArmWindow = field(default_factory=ArmWindow)
    share_sum: float = 0.0  # sum over the requests of the challenger's share (0-1) each was assigned at
    assignments: int = 0
    fallbacks: int = 0
    unitless: int = 0  # requests without a unit id (random assignment)
    unitless_share_sum: float = 0.0  # share_sum of those


def traffic_flush(*, writer: str, deltas: list[TrafficDelta]) -> int:
    """Add a writer's counts to its rows, in one transaction; returns the rows touched.

    Each (rollout, arm, minute) row of a writer is read under a row lock and merged (latency buckets in Python),
    so a writer may flush the same minute several times. Nothing here is audited: traffic is not a state change.
    """
    if not writer or len(writer) > 128:
        raise ValueError("A writer names itself in 1 to 128 characters.")
    with transaction.atomic():
        for delta in deltas:
            minute = minute_of(delta.minute)
            key = {"rollout_id": delta.rollout_id, "arm": delta.arm, "minute": minute, "writer": writer}
            row = ArmMinute.objects.select_for_update().filter(**key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        row = ArmMinute.objects.create(**key)
                except IntegrityError:
                    row = ArmMinute.objects.select_for_update().get(**key)
            window = delta.window
            histogram = LatencyHistogram.from_json(row.latency_buckets)
            histogram.merge(window.latency)
            row.latency_buckets = histogram.to_json()
            row.requests += window.requests
            row.errors += window.errors
            row.latency_sum_ms += window.latency_sum_ms
            row.success_count += window.success_count
            row.successes += window.successes
            row.value_count += window.value_count
            row.value_sum += window.value_sum
            row.value_sum_sq += window.value_sum_sq
            row.share_sum += delta.share_sum
            row.unitless += delta.unitless
            row.unitless_share_sum += delta.unitless_share_sum
            row.assignments += delta.assignments
            row.fallbacks += delta.fallbacks
            row.save()
    return len(deltas)
