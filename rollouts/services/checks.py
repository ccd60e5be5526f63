"""The minute check beat runs for every rollout that routes traffic: guardrails first, then automatic advance."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from forge_site.audit import audit_record
from governance.services.alerts import alert_raise
from rollouts import selectors
from rollouts.guardrails import GuardrailVerdict
from rollouts.models import SERVING_STATES, AdvanceMode, Rollout, RolloutState
from rollouts.services.common import RolloutError, locked, subject
from rollouts.services.lifecycle import rollout_advance, rollout_rollback

logger = logging.getLogger(__name__)


def _finite(number: float | None) -> float | None:
    return number if number is not None and math.isfinite(number) else None  # alert_raise refuses inf and NaN


def guardrail_alert(*, rollout: Rollout, breaches: tuple[GuardrailVerdict, ...]) -> None:
    """The single call site of governance's alerts service (alert_raise, INTERFACES.md).

    Called inside the rollback's transaction: alert_raise records the alert and its audit event there and delivers
    to the destinations on commit (a destination that hangs delays no rollback).
    """
    for breach in breaches:
        alert_raise(
            model=rollout.model,
            version=rollout.challenger,
            source="rollout",
            metric=breach.name,
            feature=None,
            value=_finite(breach.value),
            threshold=_finite(breach.threshold),
            severity="critical",
            message=f"Rollout #{rollout.pk} of {rollout.model.name} rolled back: {breach.message}",
            dedup_key=f"rollout:{rollout.pk}:{breach.name}",
        )


def _breach_payload(breaches: tuple[GuardrailVerdict, ...]) -> dict[str, Any]:
    return {
        "names": [b.name for b in breaches],
        "verdicts": [
            {"name": b.name, "value": b.value, "threshold": b.threshold, "message": b.message} for b in breaches
        ],
    }


def rollout_check(*, rollout_id: int, now: datetime | None = None) -> str:
    """Roll back on a guardrail breach; else advance an automatic rollout whose step's minimums are met.

    Returns what it did: "rolled back", "advanced", "ok" or "skipped" (not routing traffic).
    """
    now = now or timezone.now()
    rollout = selectors.rollout_get(rollout_id=rollout_id)
    if rollout.state not in SERVING_STATES:
        return "skipped"
    analysis = selectors.rollout_analysis(rollout=rollout)
    breaches = analysis.guardrails.breaches
    if breaches:
        reason = "Guardrail breached: " + " ".join(f"{b.name}: {b.message}" for b in breaches)
        payload = _breach_payload(breaches)
        with transaction.atomic():
            current = locked(rollout)
            if current.state not in SERVING_STATES:
                return "skipped"  # a person rolled it back or paused it in the meantime
            audit_record(
                actor=None,
                action="rollout.guardrail_breach",
                obj=current,
                object_repr=str(current)[:255],
                after={**subject(current), **payload, "share": current.challenger_share},
            )
            rollout_rollback(rollout=current, actor=None, reason=reason, automatic=True, guardrail=payload)
            guardrail_alert(rollout=current, breaches=breaches)
        return "rolled back"
    if (
        rollout.state == RolloutState.RUNNING
        and rollout.advance_mode == AdvanceMode.AUTOMATIC
        and not rollout.is_last_step
        and not analysis.guardrails.waiting
        and not selectors.step_progress(rollout=rollout, now=now)["unmet"]
    ):
        try:
            rollout_advance(rollout=rollout, actor=None, now=now)
        except RolloutError as exc:  # the state changed under us: next minute decides again
            logger.info("rollout #%s not advanced: %s", rollout.pk, exc.message)
            return "ok"
        return "advanced"
    return "ok"


def rollouts_check_all() -> dict[str, str]:
    """Check every rollout that routes traffic; one failing check does not stop the others."""
    done = {}
    for rollout_id in Rollout.objects.filter(state__in=SERVING_STATES).values_list("pk", flat=True):
        try:
            done[str(rollout_id)] = rollout_check(rollout_id=rollout_id)
        except Exception:
            logger.exception("checking rollout #%s failed", rollout_id)
            done[str(rollout_id)] = "failed"
    return done
