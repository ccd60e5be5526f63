"""The minute check: a guardrail breach rolls back at once, audited and alerted; automatic advance; beat's task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from forge_site.models import AuditEvent
from governance.models import Alert
from models_registry.models import AliasAssignment
from rollouts.models import Rollout
from rollouts.services import promotion_request, rollout_check, rollout_pause, rollouts_check_all
from tests.conftest import wait_for
from tests.rollouts.conftest import actions, serve, started

pytestmark = pytest.mark.django_db


def test_a_challenger_that_fails_is_rolled_back_with_the_reason_audited_and_alerted(setup):
    rollout = started(setup, plan=[20, 50])
    serve(rollout, "champion", 800, errors=4)
    serve(rollout, "challenger", 200, errors=150)
    assert rollout_check(rollout_id=rollout.pk) == "rolled back"
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert (rollout.state, rollout.challenger_share) == ("rolled_back", 0.0)
    assert rollout.breach["names"] == ["error_rate"] and "75.00%" in rollout.end_reason
    assert actions()[-4:] == ["rollout.guardrail_breach", "alias.clear", "rollout.rollback", "alert.fire"]
    rollback = AuditEvent.objects.get(action="rollout.rollback")
    assert rollback.actor_label == "system" and rollback.after["automatic"] is True
    assert rollback.after["guardrail"]["names"] == ["error_rate"]
    breach = AuditEvent.objects.get(action="rollout.guardrail_breach")
    assert breach.after["share"] == 20.0 and breach.after["model"] == "credit-risk"
    alert = Alert.objects.get()  # through governance's alerts, to every destination that takes critical alerts
    assert (alert.source, alert.metric, alert.severity, alert.status) == ("rollout", "error_rate", "critical", "firing")
    verdict = rollout.breach["verdicts"][0]
    assert alert.version == rollout.challenger and (alert.value, alert.threshold) == (
        verdict["value"],
        verdict["threshold"],
    )
    assert alert.dedup_key == f"rollout:{rollout.pk}:error_rate" and "rolled back" in alert.message
    assert rollout_check(rollout_id=rollout.pk) == "skipped"


def test_a_slow_challenger_is_rolled_back_on_p95_latency(setup):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", 500, latency_ms=4.0)
    serve(rollout, "challenger", 500, latency_ms=9.0)
    assert rollout_check(rollout_id=rollout.pk) == "rolled back"
    assert Rollout.objects.get(pk=rollout.pk).breach["names"] == ["p95_latency_ratio"]


def test_nothing_acts_before_the_minimum_samples(setup):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", 500)
    serve(rollout, "challenger", 150, errors=150)
    assert rollout_check(rollout_id=rollout.pk) == "ok"
    assert Rollout.objects.get(pk=rollout.pk).state == "running"


def test_a_breach_while_awaiting_approval_withdraws_the_request(setup):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", 500)
    promotion_request(rollout=rollout, actor=setup.engineer)
    serve(rollout, "challenger", 300, errors=300)
    assert rollout_check(rollout_id=rollout.pk) == "rolled back"
    assert rollout.promotion_requests.get().status == "withdrawn"


def test_a_paused_rollout_is_not_checked(setup):
    rollout = rollout_pause(rollout=started(setup), actor=setup.manager)
    serve(rollout, "challenger", 300, errors=300, share=5)
    assert rollout_check(rollout_id=rollout.pk) == "skipped"


def test_an_automatic_rollout_advances_when_the_steps_minimums_and_guardrails_allow(setup):
    plan = [{"share": 10, "min_minutes": 5, "min_samples": 200}, {"share": 50, "min_minutes": 5, "min_samples": 200}]
    rollout = started(setup, plan=plan, advance_mode="automatic")
    serve(rollout, "champion", 1800)
    serve(rollout, "challenger", 250)
    assert rollout_check(rollout_id=rollout.pk) == "ok"  # 5 minutes not yet passed
    later = timezone.now() + timedelta(minutes=6)
    assert rollout_check(rollout_id=rollout.pk, now=later) == "advanced"
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert (rollout.step_index, rollout.challenger_share) == (1, 50.0)
    event = AuditEvent.objects.get(action="rollout.advance")
    assert event.actor_label == "system" and event.after["automatic"] is True
    assert rollout_check(rollout_id=rollout.pk, now=later + timedelta(minutes=10)) == "ok"  # the last step: stays


def test_a_manual_rollout_never_advances_by_itself(setup):
    rollout = started(setup, plan=[10, 50])
    serve(rollout, "champion", 1800)
    serve(rollout, "challenger", 250)
    assert rollout_check(rollout_id=rollout.pk, now=timezone.now() + timedelta(hours=1)) == "ok"


def test_checking_all_goes_on_past_a_failing_rollout(setup, monkeypatch):
    first = started(setup, plan=[50])
    from rollouts.services import checks

    def boom(*, rollout_id, now=None):
        raise RuntimeError("broken")

    monkeypatch.setattr(checks, "rollout_check", boom)
    assert rollouts_check_all() == {str(first.pk): "failed"}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_beats_task_rolls_back_a_failing_challenger_through_a_real_worker(setup, celery_worker):
    from rollouts.tasks import check_rollouts

    rollout = started(setup, plan=[30])
    serve(rollout, "champion", 700)
    serve(rollout, "challenger", 300, errors=290)
    check_rollouts.apply_async(queue="default")
    wait_for(lambda: Rollout.objects.get(pk=rollout.pk).state == "rolled_back", timeout=60)
    assert not AliasAssignment.objects.filter(model=setup.model, alias="challenger", ended_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="rollout.guardrail_breach").count() == 1
