"""A rollout's life: create (draft), start, advance, pause, resume, roll back, abort; and the minute check.

Each service locks the rollout's row, checks the state under the lock, writes the change and its audit event in
one transaction. "One active rollout per model" is held by a partial unique index: of two rollouts of one model
started at once, the database lets one in and the other gets a 409.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from models_registry.models import Alias, AliasAssignment, ModelVersion, RegisteredModel, VersionStatus
from models_registry.services import RegistryError, alias_clear, alias_set
from rollouts import routing, selectors
from rollouts.guardrails import GuardrailConfig, PrimaryMetric
from rollouts.models import ACTIVE_STATES, AdvanceMode, PromotionRequest, PromotionStatus, Rollout, RolloutState
from rollouts.plans import PlanError, normalize_plan
from rollouts.services.common import RolloutError, bump, locked, record

logger = logging.getLogger(__name__)

UNIT_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _current_champion(model: RegisteredModel) -> ModelVersion | None:
    holder = (
        AliasAssignment.objects.filter(model=model, alias=Alias.CHAMPION, ended_at__isnull=True)
        .select_related("version")
        .first()
    )
    return holder.version if holder is not None else None


def _registry(exc: RegistryError) -> RolloutError:
    return RolloutError(exc.message, field=exc.field, code=exc.code, status=exc.status)


def rollout_create(
    *,
    model: RegisteredModel,
    challenger: ModelVersion,
    plan: Any,
    actor: Any,
    unit_key: str = "user",
    guardrails: Any = None,
    primary_metric: Any = None,
    advance_mode: str = AdvanceMode.MANUAL,
    description: str = "",
) -> Rollout:
    """A draft rollout of `challenger` against the model's current champion; nothing is routed until it starts."""
    if challenger.model_id != model.pk:
        raise RolloutError(f"{challenger} is not a version of {model.name}.", field="challenger")
    if challenger.status != VersionStatus.READY:
        raise RolloutError(
            f"{challenger} is {challenger.status}: only an inspected, ready version can be a challenger.",
            field="challenger",
            code="not_ready",
        )
    champion = _current_champion(model)
    if champion is None:
        raise RolloutError(
            f"{model.name} has no champion yet: a manager sets one first "
            f"(PUT /api/v1/models/{model.name}/aliases/champion/).",
            field="model",
            code="no_champion",
            status=409,
        )
    if champion.pk == challenger.pk:
        raise RolloutError(f"{challenger.version} is already the champion.", field="challenger")
    try:
        steps = normalize_plan(plan)
        config = GuardrailConfig.from_json(guardrails)
        metric = PrimaryMetric.from_json(primary_metric)
    except PlanError as exc:
        raise RolloutError(str(exc), field=exc.field) from exc
    except ValueError as exc:
        field = "guardrails" if "uardrail" in str(exc) else "primary_metric"
        raise RolloutError(str(exc), field=field) from exc
    if not isinstance(unit_key, str) or not UNIT_KEY_RE.match(unit_key):
        raise RolloutError(
            "unit_key names what a unit id is (user, account, device): letters, digits, '_', '.', '-'.",
            field="unit_key",
        )
    if advance_mode not in AdvanceMode.values:
        raise RolloutError(f"advance_mode is {' or '.join(AdvanceMode.values)}.", field="advance_mode")
    with transaction.atomic():
        rollout = Rollout.objects.create(
            model=model,
            champion=champion,
            challenger=challenger,
            plan=steps,
            advance_mode=advance_mode,
            guardrails=config.to_json(),
            primary_metric=metric.to_json(),
            salt=routing.new_salt(),
            unit_key=unit_key,
            description=description,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record(
            rollout,
            "rollout.create",
            actor,
            plan=steps,
            advance_mode=advance_mode,
            unit_key=unit_key,
            guardrails=config.to_json(),
            primary_metric=metric.to_json(),
        )
    return rollout


def _require(rollout: Rollout, *states: str, doing: str) -> None:
    if rollout.state not in states:
        allowed = " or ".join(RolloutState(s).label.lower() for s in states)
        raise RolloutError(
            f"Rollout #{rollout.pk} is {rollout.get_state_display().lower()}; it can {doing} only when {allowed}.",
            code="wrong_state",
            status=409,
        )


def rollout_start(*, rollout: Rollout, actor: Any) -> Rollout:
    """Start routing: the first step's share goes to the challenger, which takes the `challenger` alias."""
    try:
        with transaction.atomic():
            rollout = locked(rollout)
            _require(rollout, RolloutState.DRAFT, doing="start")
            champion = _current_champion(rollout.model)
            if champion is None or champion.pk != rollout.champion_id:
                now_holder = champion.version if champion is not None else "nobody"
                raise RolloutError(
                    f"The champion of {rollout.model.name} is now {now_holder}, not {rollout.champion.version} as "
                    "when this rollout was drafted; draft a new rollout.",
                    code="champion_moved",
                    status=409,
                )
            now = timezone.now()
            share = rollout.plan[0]["share"]
            bump(
                rollout,
                state=RolloutState.RUNNING,
                step_index=0,
                challenger_share=share,
                started_at=now,
                step_started_at=now,
            )
            try:
                alias_set(
                    model=rollout.model,
                    alias=Alias.CHALLENGER,
                    version=rollout.challenger,
                    actor=actor,
                    reason=f"Rollout #{rollout.pk} started.",
                )
            except RegistryError as exc:
                raise _registry(exc) from exc
            record(rollout, "rollout.start", actor, step=1, share=share)
    except IntegrityError as exc:
        other = Rollout.objects.filter(model=rollout.model, state__in=ACTIVE_STATES).exclude(pk=rollout.pk).first()
        which = f" (#{other.pk}, {other.get_state_display().lower()})" if other is not None else ""
        raise RolloutError(
            f"{rollout.model.name} already has a rollout running, paused or awaiting approval{which}; "
            "finish or roll it back first.",
            code="rollout_active",
            status=409,
        ) from exc
    return rollout


def rollout_advance(*, rollout: Rollout, actor: Any, override_reason: str = "", now: datetime | None = None) -> Rollout:
    """Move to the next step. Before the step's minimums are met, only with a written override reason (audited)."""
    now = now or timezone.now()
    override_reason = (override_reason or "").strip()
    with transaction.atomic():
        rollout = locked(rollout)
        _require(rollout, RolloutState.RUNNING, doing="advance")
        if rollout.is_last_step:
            raise RolloutError(
                f"Rollout #{rollout.pk} is at its last step ({rollout.challenger_share:g}%); ask for promotion or "
                "roll back.",
                code="last_step",
                status=409,
            )
        unmet = selectors.step_progress(rollout=rollout, now=now)["unmet"]
        if unmet and not override_reason:
            raise RolloutError(
                "The step's minimums are not met: " + "; ".join(unmet) + ". Wait, or advance with an override "
                "reason (it is audited).",
                field="override_reason",
                code="minimums_unmet",
                status=409,
            )
        step = rollout.step_index + 1
        share = rollout.plan[step]["share"]
        before = {"step": rollout.step_index + 1, "share": rollout.challenger_share}
        bump(rollout, step_index=step, challenger_share=share, step_started_at=now)
        extra: dict[str, Any] = {"automatic": not getattr(actor, "is_authenticated", False)}
        if unmet:
            extra.update(override_reason=override_reason, unmet=unmet)
        record(rollout, "rollout.advance", actor, before=before, step=step + 1, share=share, **extra)
    return rollout


def rollout_pause(*, rollout: Rollout, actor: Any, reason: str = "") -> Rollout:
    """Send everyone to the champion until resumed; the step and its plan are kept."""
    with transaction.atomic():
        rollout = locked(rollout)
        _require(rollout, RolloutState.RUNNING, doing="pause")
        before = {"share": rollout.challenger_share}
        bump(rollout, state=RolloutState.PAUSED, challenger_share=0.0)
        record(rollout, "rollout.pause", actor, before=before, reason=reason.strip() or None, share=0.0)
    return rollout


def rollout_resume(*, rollout: Rollout, actor: Any) -> Rollout:
    """Route the current step's share again; the step's minimums count afresh from now."""
    with transaction.atomic():
        rollout = locked(rollout)
        _require(rollout, RolloutState.PAUSED, doing="resume")
        share = rollout.current_step["share"]
        bump(rollout, state=RolloutState.RUNNING, challenger_share=share, step_started_at=timezone.now())
        record(rollout, "rollout.resume", actor, step=rollout.step_index + 1, share=share)
    return rollout


def rollout_rollback(
    *, rollout: Rollout, actor: Any, reason: str, automatic: bool = False, guardrail: dict[str, Any] | None = None
) -> Rollout:
    """Stop the challenger: 0% at once, the challenger alias cleared, a pending promotion request withdrawn.

    From a promoted rollout, the champion alias moves back to the version that was champion before it.
    """
    reason = (reason or "").strip()
    if not reason:
        raise RolloutError("Say why the rollout is rolled back.", field="reason", code="required")
    with transaction.atomic():
        rollout = locked(rollout)
        _require(
            rollout,
            RolloutState.RUNNING,
            RolloutState.PAUSED,
            RolloutState.AWAITING_APPROVAL,
            RolloutState.PROMOTED,
            doing="roll back",
        )
        was = rollout.state
        now = timezone.now()
        try:
            if was == RolloutState.PROMOTED:
                alias_set(
                    model=rollout.model,
                    alias=Alias.CHAMPION,
                    version=rollout.champion,
                    actor=actor,
                    reason=f"Rollback of rollout #{rollout.pk}: {reason}"[:500],
                )
            holder = AliasAssignment.objects.filter(
                model=rollout.model, alias=Alias.CHALLENGER, ended_at__isnull=True
            ).first()
            if holder is not None and holder.version_id == rollout.challenger_id:
                alias_clear(
                    model=rollout.model,
                    alias=Alias.CHALLENGER,
                    actor=actor,
                    reason=f"Rollout #{rollout.pk} rolled back.",
                )
        except RegistryError as exc:
            raise _registry(exc) from exc
        PromotionRequest.objects.filter(rollout=rollout, status=PromotionStatus.PENDING).update(
            status=PromotionStatus.WITHDRAWN, decided_at=now, decision_comment=f"Rolled back: {reason}"[:2000]
        )
        before = {"state": was, "share": rollout.challenger_share}
        bump(
            rollout,
            state=RolloutState.ROLLED_BACK,
            challenger_share=0.0,
            ended_at=now,
            end_reason=reason,
            **({"breach": guardrail} if guardrail is not None else {}),
        )
        extra: dict[str, Any] = {"guardrail": guardrail} if guardrail is not None else {}
        record(rollout, "rollout.rollback", actor, before=before, reason=reason, automatic=automatic, **extra)
    return rollout


def rollout_abort(*, rollout: Rollout, actor: Any, reason: str = "") -> Rollout:
    """Discard a draft that will never run."""
    with transaction.atomic():
        rollout = locked(rollout)
        _require(rollout, RolloutState.DRAFT, doing="be aborted")
        bump(rollout, state=RolloutState.ABORTED, ended_at=timezone.now(), end_reason=reason.strip())
        record(rollout, "rollout.abort", actor, reason=reason.strip() or None)
    return rollout
