"""Beat's minute check of every rollout that routes traffic (guardrails, automatic advance); `default` queue."""

from __future__ import annotations

from celery import shared_task

from rollouts.services import rollouts_check_all


@shared_task(name="rollouts.check_rollouts", acks_late=True, soft_time_limit=50, time_limit=55)
def check_rollouts() -> dict[str, str]:
    return rollouts_check_all()
