"""forge_demo's rollouts step (settings.FORGE_DEMO_STEPS): a running rollout of credit-risk with traffic,
outcomes and one promotion request waiting for a manager.

Written honestly: every record is written when the demo runs, through the services the console uses (the rollout
is drafted and started by erin, the request asked for by erin, all audited then). The traffic is what a serving
process would have flushed, counted under the writer "forge_demo", all in the minutes after the start: nothing
claims a time before the audit trail says the rollout began. Idempotent: a model that already has a rollout is
left as it is.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from models_registry.models import Alias, AliasAssignment, ModelVersion, RegisteredModel, VersionStatus
from rollouts import request_ids
from rollouts.aggregates import ArmWindow
from rollouts.models import PromotionPolicy, Rollout
from rollouts.routing import Router
from rollouts.services import (
    TrafficDelta,
    UnitSeen,
    outcome_record,
    promotion_request,
    rollout_create,
    rollout_start,
    traffic_flush,
    units_record,
)
from rollouts.services.traffic import minute_of, request_id_key, unix_minute

MODEL = "credit-risk"
ENGINEER = "erin"
WRITER = "forge_demo"
REQUESTS = 12_000
APPLICANTS = 4_000  # each applicant sends three requests: the sample-ratio check counts applicants
OUTCOME_SHARE = 0.15  # outcomes (repaid or not) known so far for this share of requests
PLAN = [
    {"share": 10, "min_minutes": 30, "min_samples": 1000},
    {"share": 50, "min_minutes": 60, "min_samples": 5000},
    {"share": 100, "min_minutes": 0, "min_samples": 0},
]
# What each arm does in the simulation: latency (lognormal around the median, ms), error rate, repayment rate.
BEHAVIOUR = {
    "champion": {"median_ms": 2.4, "errors": 0.002, "success": 0.78},
    "challenger": {"median_ms": 2.5, "errors": 0.002, "success": 0.80},
}


def _write(stdout: Any, text: str) -> None:
    stdout.write(f"{text}\n")


def _challenger(model: RegisteredModel, champion: ModelVersion) -> ModelVersion | None:
    """The newest ready version that is not the champion."""
    return (
        ModelVersion.objects.filter(model=model, status=VersionStatus.READY)
        .exclude(pk=champion.pk)
        .order_by("-created_at", "-pk")
        .first()
    )


def _traffic(rollout: Rollout) -> tuple[dict[str, ArmWindow], list[UnitSeen], list[tuple[str, str, bool]]]:
    """REQUESTS simulated requests from APPLICANTS applicants in the minute the rollout started, routed by its real
    router: each arm's counts, the applicants (units) seen, and the requests whose outcome is known."""
    rng = random.Random(rollout.salt)
    router = Router(rollout.salt, rollout.challenger_share)
    key = request_id_key()
    assert rollout.started_at is not None
    minute = unix_minute(minute_of(rollout.started_at))
    windows = {"champion": ArmWindow(), "challenger": ArmWindow()}
    outcomes: list[tuple[str, str, bool]] = []
    units: dict[int, UnitSeen] = {}
    for i in range(REQUESTS):
        assignment, point = router.assign_with_point(f"applicant-{i % APPLICANTS}")
        arm = assignment.arm
        if point is not None and point not in units:
            units[point] = UnitSeen(point, arm, rollout.challenger_share, rollout.started_at)
        behaviour = BEHAVIOUR[arm]
        latency = behaviour["median_ms"] * math.exp(rng.gauss(0, 0.25))
        windows[arm].record_request(latency, error=rng.random() < behaviour["errors"])
        if rng.random() < OUTCOME_SHARE:
            request_id = request_ids.issue(key, rollout.pk, arm, minute)
            outcomes.append((arm, request_id, rng.random() < behaviour["success"]))
    return windows, list(units.values()), outcomes


def seed(*, stdout: Any, now: datetime) -> None:
    """The step (`now` is when forge_demo started; every record here is written at the time it runs)."""
    model = RegisteredModel.objects.filter(name=MODEL).first()
    engineer = User.objects.filter(username=ENGINEER).first()
    if model is None or engineer is None:
        _write(stdout, f"rollouts: no {MODEL} model or no {ENGINEER}; skipped")
        return
    if Rollout.objects.filter(model=model).exists():
        return
    holder = AliasAssignment.objects.filter(model=model, alias=Alias.CHAMPION, ended_at__isnull=True).first()
    challenger = _challenger(model, holder.version) if holder is not None else None
    if holder is None or challenger is None:
        _write(stdout, f"rollouts: {MODEL} has no champion and another ready version; skipped")
        return
    champion = holder.version
    # A retrained model is not expected to reproduce its predecessor's outputs, so this model's policy asks for
    # no parity run; the rest of the default evidence stands.
    PromotionPolicy.objects.get_or_create(model=model, defaults={"require_parity": False})
    rollout = rollout_create(
        model=model,
        challenger=challenger,
        plan=PLAN,
        actor=engineer,
        unit_key="applicant",
        primary_metric={"name": "success", "higher_is_better": True, "margin": 0.02, "min_outcomes": 100},
        description=f"Canary of {challenger.version} against {champion.version}: repayment of approved loans.",
    )
    rollout = rollout_start(rollout=rollout, actor=engineer)
    windows, units, outcomes = _traffic(rollout)
    share = rollout.challenger_share / 100
    deltas = [
        TrafficDelta(rollout.pk, arm, rollout.started_at, window, share_sum=window.requests * share)  # type: ignore[arg-type]
        for arm, window in windows.items()
    ]
    traffic_flush(writer=WRITER, deltas=deltas)
    units_record(rollout_id=rollout.pk, units=units)
    with transaction.atomic():
        for _arm, request_id, success in outcomes:
            outcome_record(rollout=rollout, request_id=request_id, success=success, writer=WRITER)
    promotion_request(
        rollout=rollout,
        actor=engineer,
        comment="Repayment is not worse on the first 10% and no guardrail has fired; asking to promote.",
    )
    served = {arm: window.requests for arm, window in windows.items()}
    _write(
        stdout,
        f"rollout #{rollout.pk} of {MODEL}: {champion.version} vs {challenger.version} at "
        f"{rollout.challenger_share:g}%, {served['champion']:,} + {served['challenger']:,} requests, "
        f"{len(outcomes):,} outcomes; promotion request waiting for a manager",
    )
