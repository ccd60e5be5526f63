"""Rollout writes: each changes rows and records its audit event in one transaction."""

from rollouts.services.checks import guardrail_alert, rollout_check, rollouts_check_all
from rollouts.services.common import RolloutError
from rollouts.services.lifecycle import (
    rollout_abort,
    rollout_advance,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_rollback,
    rollout_start,
)
from rollouts.services.promotion import promotion_approve, promotion_reject, promotion_request
from rollouts.services.traffic import (
    CONSOLE_WRITER,
    AssignResult,
    TrafficDelta,
    UnitSeen,
    outcome_record,
    predict_url,
    rollout_assign,
    router_for,
    traffic_flush,
    units_record,
)

__all__ = [
    "CONSOLE_WRITER",
    "AssignResult",
    "RolloutError",
    "TrafficDelta",
    "UnitSeen",
    "guardrail_alert",
    "outcome_record",
    "predict_url",
    "promotion_approve",
    "promotion_reject",
    "promotion_request",
    "rollout_abort",
    "rollout_advance",
    "rollout_assign",
    "rollout_check",
    "rollout_create",
    "rollout_pause",
    "rollout_resume",
    "rollout_rollback",
    "rollout_start",
    "rollouts_check_all",
    "router_for",
    "traffic_flush",
    "units_record",
]
