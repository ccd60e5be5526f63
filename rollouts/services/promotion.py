"""Promotion with four eyes: an engineer asks, a manager who is not the requester approves or rejects.

Approval moves the `champion` alias through the registry's alias_set, in the same transaction as the decision and
its audit event. Both approvals of two managers clicking at once lock the rollout's row first: the second finds
the request decided and promotes nothing. The requester can never decide their own request: the service refuses
it, and a check constraint on the table refuses it for any other path (the admin, a script).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from forge_site.audit import audit_record
from forge_site.roles import user_can
from models_registry.models import Alias, AliasAssignment
from models_registry.services import RegistryError, alias_clear, alias_set
from rollouts.models import PromotionRequest, PromotionStatus, Rollout, RolloutState
from rollouts.requirements import NOT_AVAILABLE, UNMET, promotion_requirements
from rollouts.services.common import RolloutError, bump, locked, subject

MAX_TEXT = 2000


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RolloutError(f"{field} must be text.", field=field)
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise RolloutError(f"{field} is longer than {MAX_TEXT} characters.", field=field)
    return text


def _record(request: PromotionRequest, action: str, actor: Any, **after: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=request,
        object_repr=f"promotion of {request.rollout.model.name} {request.rollout.challenger.version}",
        after={**subject(request.rollout), "request": request.pk, **after},
    )


def promotion_request(*, rollout: Rollout, actor: Any, comment: Any = "") -> PromotionRequest:
    """Ask for the challenger's promotion; the rollout awaits a manager's decision (traffic keeps flowing)."""
    comment = _text(comment, "comment")
    with transaction.atomic():
        rollout = locked(rollout)
        if rollout.state != RolloutState.RUNNING:
            pending = PromotionRequest.objects.filter(rollout=rollout, status=PromotionStatus.PENDING).first()
            if pending is not None:
                raise RolloutError(
                    f"Promotion of rollout #{rollout.pk} was already asked for (request #{pending.pk}).",
                    code="already_requested",
                    status=409,
                )
            raise RolloutError(
                f"Rollout #{rollout.pk} is {rollout.get_state_display().lower()}; "
                "promotion is asked for while it runs.",
                code="wrong_state",
                status=409,
            )
        requirements = [r.to_json() for r in promotion_requirements(rollout=rollout)]
        request = PromotionRequest.objects.create(
            rollout=rollout, requested_by=actor, comment=comment, requirements=requirements
        )
        bump(rollout, state=RolloutState.AWAITING_APPROVAL)
        _record(
            request,
            "promotion.request",
            actor,
            comment=comment or None,
            unmet=[r["key"] for r in requirements if r["status"] == UNMET],
        )
    return request


def _pending_or_decided(rollout: Rollout, actor: Any, verb: str) -> PromotionRequest | None:
    """The pending request; None when this manager already made this very decision (a double click)."""
    request = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .filter(rollout=rollout)
        .select_related("requested_by", "decided_by")
        .order_by("-requested_at", "-pk")
        .first()
    )
    if request is None:
        raise RolloutError(
            f"Nobody has asked for the promotion of rollout #{rollout.pk}.", code="no_request", status=409
        )
    if request.status == PromotionStatus.PENDING:
        return request
    if request.status == verb and request.decided_by_id == getattr(actor, "pk", None):
        return None
    by = f" by {request.decided_by.get_username()}" if request.decided_by else ""
    when = f" at {request.decided_at:%Y-%m-%d %H:%M:%S} UTC" if request.decided_at else ""
    raise RolloutError(
        f"Promotion request #{request.pk} was already {request.get_status_display().lower()}{by}{when}.",
        code="already_decided",
        status=409,
    )


def _four_eyes(request: PromotionRequest, actor: Any, action: str) -> None:
    if not user_can(actor, "promotion.decide"):
        raise RolloutError("Only a manager decides a promotion.", code="permission_denied", status=403)
    if request.requested_by_id == getattr(actor, "pk", None):
        raise RolloutError(
            f"You asked for this promotion; another manager must {action} it (four eyes).",
            code="own_request",
            status=403,
        )


def promotion_approve(
    *, rollout: Rollout, actor: Any, comment: Any = "", override_reason: Any = ""
) -> PromotionRequest:
    """Approve: the champion alias moves to the challenger, with the decision and its audit event, once.

    Refused while a requirement is unmet, unless `override_reason` says why (audited as an override).
    """
    comment = _text(comment, "comment")
    override_reason = _text(override_reason, "override_reason")
    with transaction.atomic():
        rollout = locked(rollout)
        request = _pending_or_decided(rollout, actor, PromotionStatus.APPROVED)
        if request is None:  # the same manager's second click: already promoted by this very approval
            return PromotionRequest.objects.filter(rollout=rollout).order_by("-requested_at", "-pk").first()  # type: ignore[return-value]
        _four_eyes(request, actor, "approve")
        requirements = promotion_requirements(rollout=rollout)
        unmet = [r for r in requirements if r.status == UNMET]
        if unmet and not override_reason:
            raise RolloutError(
                "Requirements not met: "
                + "; ".join(f"{r.label} ({r.detail})" for r in unmet)
                + ". Approve with an override reason to promote anyway (it is audited as an override).",
                field="override_reason",
                code="requirements_unmet",
                status=409,
            )
        now = timezone.now()
        try:
            alias_set(
                model=rollout.model,
                alias=Alias.CHAMPION,
                version=rollout.challenger,
                actor=actor,
                reason=(
                    f"Promotion request #{request.pk} of rollout #{rollout.pk} approved"
                    + (f" with an override: {override_reason}" if unmet else "")
                )[:500],
            )
            holder = AliasAssignment.objects.filter(
                model=rollout.model, alias=Alias.CHALLENGER, ended_at__isnull=True
            ).first()
            if holder is not None and holder.version_id == rollout.challenger_id:
                alias_clear(
                    model=rollout.model,
                    alias=Alias.CHALLENGER,
                    actor=actor,
                    reason=f"{rollout.challenger.version} promoted to champion.",
                )
        except RegistryError as exc:
            raise RolloutError(exc.message, field=exc.field, code=exc.code, status=exc.status) from exc
        request.status = PromotionStatus.APPROVED
        request.decided_by = actor
        request.decided_at = now
        request.decision_comment = comment
        request.override_reason = override_reason if unmet else ""
        request.decision_requirements = [r.to_json() for r in requirements]
        request.save()
        bump(rollout, state=RolloutState.PROMOTED, ended_at=now, end_reason=f"Promoted by {actor.get_username()}.")
        after: dict[str, Any] = {
            "comment": comment or None,
            "unmet": [r.key for r in unmet],
            "not_available": [r.key for r in requirements if r.status == NOT_AVAILABLE],
        }
        if unmet:
            after["override_reason"] = override_reason
        _record(request, "promotion.approve", actor, **after)
    return request


def promotion_reject(*, rollout: Rollout, actor: Any, comment: Any = "") -> PromotionRequest:
    """Reject: the rollout runs on at its current step; the engineer may keep going, ask again or roll back."""
    comment = _text(comment, "comment")
    if not comment:
        raise RolloutError("Say why the promotion is rejected.", field="comment", code="required")
    with transaction.atomic():
        rollout = locked(rollout)
        request = _pending_or_decided(rollout, actor, PromotionStatus.REJECTED)
        if request is None:
            return PromotionRequest.objects.filter(rollout=rollout).order_by("-requested_at", "-pk").first()  # type: ignore[return-value]
        _four_eyes(request, actor, "reject")
        request.status = PromotionStatus.REJECTED
        request.decided_by = actor
        request.decided_at = timezone.now()
        request.decision_comment = comment
        request.decision_requirements = [r.to_json() for r in promotion_requirements(rollout=rollout)]
        request.save()
        bump(rollout, state=RolloutState.RUNNING)
        _record(request, "promotion.reject", actor, comment=comment)
    return request
