"""Rollout API inputs (shape only: the services decide) and outputs."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from forge_site.api_inputs import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictSerializer,
)
from rollouts import selectors
from rollouts.models import AdvanceMode, PromotionRequest, Rollout
from rollouts.plans import plan_text
from rollouts.requirements import promotion_requirements
from rollouts.services import predict_url

# --- inputs -----------------------------------------------------------------------------------------------------------


class RolloutCreateInput(StrictSerializer):
    model = StrictCharField(max_length=128)
    challenger = StrictCharField(max_length=64, help_text="a ready version of the model")
    plan = serializers.JSONField(
        help_text="challenger shares in percent, [5, 25, 50, 100], or steps with minimums: "
        '[{"share": 5, "min_minutes": 30, "min_samples": 1000}, …]'
    )
    unit_key = StrictCharField(max_length=64, default="user", help_text="what a unit id names")
    guardrails = serializers.JSONField(required=False, help_text="omitted keys take the documented defaults")
    primary_metric = serializers.JSONField(
        required=False, help_text='"success" or "value", or {"name", "higher_is_better", "margin", "min_outcomes"}'
    )
    advance_mode = StrictChoiceField(choices=AdvanceMode.choices, default=AdvanceMode.MANUAL)
    description = StrictCharField(required=False, allow_blank=True, default="")


class AdvanceInput(StrictSerializer):
    override_reason = StrictCharField(
        required=False, allow_blank=True, default="", help_text="required to advance before the step's minimums"
    )


class ReasonInput(StrictSerializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)


class RollbackInput(StrictSerializer):
    reason = StrictCharField(max_length=2000)


class PromotionInput(StrictSerializer):
    comment = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)


class DecisionInput(StrictSerializer):
    comment = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    override_reason = StrictCharField(
        required=False, allow_blank=True, default="", max_length=2000, help_text="approve despite unmet requirements"
    )


class OutcomeInput(StrictSerializer):
    request_id = StrictCharField(max_length=200, help_text="the request_id the predict or assign answer gave")
    success = StrictBooleanField(required=False, allow_null=True, default=None)
    value = StrictFloatField(required=False, allow_null=True, default=None)


# --- outputs ------------------------------------------------------------------------------------------------------


class StepOut(serializers.Serializer):
    share = serializers.FloatField()
    min_minutes = serializers.IntegerField()
    min_samples = serializers.IntegerField()


class RolloutOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="the rollout's page in the console")
    model = serializers.CharField()
    champion = serializers.CharField()
    challenger = serializers.CharField()
    state = serializers.CharField()
    plan = StepOut(many=True)
    plan_text = serializers.CharField()
    step = serializers.IntegerField(help_text="the current step, from 1")
    split = serializers.DictField(child=serializers.FloatField(), help_text="percent of traffic per arm, now")
    advance_mode = serializers.CharField()
    unit_key = serializers.CharField()
    salt = serializers.CharField(help_text="hash salt: a gateway may assign itself with rollouts.routing")
    guardrails = serializers.JSONField()
    primary_metric = serializers.JSONField()
    revision = serializers.IntegerField()
    predict_url = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()
    statistics = serializers.JSONField(help_text="per arm, SRM, both tests, guardrails, recommendation")


class RequirementOut(serializers.Serializer):
    key = serializers.CharField()
    # The stubs think `label` is a Field attribute; DRF's metaclass takes declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField(help_text="met, unmet or not available")
    detail = serializers.CharField()
    evidence_url = serializers.CharField(allow_null=True)


class PromotionOut(serializers.Serializer):
    id = serializers.IntegerField()
    rollout = serializers.IntegerField()
    status = serializers.CharField()
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    comment = serializers.CharField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_comment = serializers.CharField()
    override_reason = serializers.CharField()
    requirements = RequirementOut(many=True, help_text="now, for a pending request; when decided, otherwise")


class PromotionStateOut(serializers.Serializer):
    request = PromotionOut(allow_null=True, help_text="the latest promotion request, if any")
    requirements = RequirementOut(many=True, help_text="as they stand now")


class RolloutDetailOut(RolloutOut):
    step_progress = serializers.JSONField(help_text="the current step's minutes and challenger requests so far")
    rejected_outcomes = serializers.IntegerField()
    promotion = PromotionOut(allow_null=True, help_text="the latest promotion request")


class AssignOut(serializers.Serializer):
    rollout = serializers.IntegerField()
    arm = serializers.CharField()
    version = serializers.CharField()
    assignment = serializers.CharField(help_text="sticky (from the unit id) or random (no unit id given)")
    request_id = serializers.CharField(help_text="send it with the request's outcome")
    unit_key = serializers.CharField()
    challenger_share = serializers.FloatField()


class OutcomeOut(serializers.Serializer):
    request_id = serializers.CharField()
    rollout = serializers.IntegerField()
    arm = serializers.CharField()
    success = serializers.BooleanField(allow_null=True)
    value = serializers.FloatField(allow_null=True)
    recorded = serializers.BooleanField(help_text="false when the same outcome had been recorded before")


def rollout_out(rollout: Rollout, *, statistics: dict[str, Any]) -> dict[str, Any]:
    share = rollout.challenger_share
    return {
        "id": rollout.pk,
        "url": reverse("rollouts:detail", kwargs={"rollout_id": rollout.pk}),
        "model": rollout.model.name,
        "champion": rollout.champion.version,
        "challenger": rollout.challenger.version,
        "state": rollout.state,
        "plan": rollout.plan,
        "plan_text": plan_text(rollout.plan),
        "step": rollout.step_index + 1,
        "split": {"champion": 100 - share, "challenger": share},
        "advance_mode": rollout.advance_mode,
        "unit_key": rollout.unit_key,
        "salt": rollout.salt,
        "guardrails": rollout.guardrails,
        "primary_metric": rollout.primary_metric,
        "revision": rollout.revision,
        "predict_url": predict_url(rollout),
        "created_by": rollout.created_by.get_username() if rollout.created_by else None,
        "created_at": rollout.created_at,
        "started_at": rollout.started_at,
        "ended_at": rollout.ended_at,
        "end_reason": rollout.end_reason,
        "statistics": statistics,
    }


def promotion_out(request: PromotionRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    if request.status == "pending":
        requirements = [r.to_json() for r in promotion_requirements(rollout=request.rollout)]
    else:
        requirements = request.decision_requirements or request.requirements
    return {
        "id": request.pk,
        "rollout": request.rollout_id,
        "status": request.status,
        "requested_by": request.requested_by.get_username(),
        "requested_at": request.requested_at,
        "comment": request.comment,
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "decided_at": request.decided_at,
        "decision_comment": request.decision_comment,
        "override_reason": request.override_reason,
        "requirements": requirements,
    }


def rollout_detail_out(rollout: Rollout) -> dict[str, Any]:
    traffic = selectors.traffic_window(rollout=rollout)
    analysis = selectors.rollout_analysis(rollout=rollout, traffic=traffic)
    body = rollout_out(rollout, statistics=analysis.to_json())
    progress = selectors.step_progress(rollout=rollout, now=timezone.now()) if rollout.step_started_at else None
    latest = selectors.promotion_history(rollout=rollout).first()
    body.update(step_progress=progress, rejected_outcomes=rollout.rejected_outcomes, promotion=promotion_out(latest))
    return body
