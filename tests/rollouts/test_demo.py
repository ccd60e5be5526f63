"""forge_demo's rollouts step: a running credit-risk rollout with traffic, outcomes and a waiting request."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.utils import timezone

from forge_site.audit import audit_verify_chain
from forge_site.models import AuditEvent
from rollouts import demo, selectors
from rollouts.models import ArmMinute, Outcome, PromotionRequest, Rollout
from rollouts.requirements import promotion_requirements

pytestmark = pytest.mark.django_db


def test_the_demo_step_is_registered():
    assert "rollouts.demo.seed" in settings.FORGE_DEMO_STEPS


def test_it_leaves_a_running_rollout_with_traffic_outcomes_and_a_request_for_a_manager(setup, monkeypatch):
    monkeypatch.setattr("rollouts.routing.new_salt", lambda: "5eed5a17c0ffee00")  # seeded: the SRM check is exact
    out = StringIO()  # after the registry's step: models, versions, a champion
    demo.seed(stdout=out, now=timezone.now())
    rollout = Rollout.objects.get()
    assert rollout.state == "awaiting_approval" and rollout.challenger_share == 10.0
    assert (rollout.champion, rollout.challenger) == (setup.champion, setup.challenger)
    traffic = selectors.traffic_window(rollout=rollout)
    assert traffic.total == demo.REQUESTS and 900 < traffic.traffic("challenger") < 1500
    assert not selectors.rollout_analysis(rollout=rollout, traffic=traffic).srm.mismatch
    assert Outcome.objects.count() > 1000
    request = PromotionRequest.objects.get()
    assert request.status == "pending" and request.requested_by == setup.engineer
    statuses = {r.key: r.status for r in promotion_requirements(rollout=rollout)}
    assert "parity" not in statuses and statuses["samples"] == "met"  # the model's policy: retrained, no parity
    assert "promotion request waiting for a manager" in out.getvalue()

    # Honest times: nothing is dated before the audit trail says the rollout started.
    start = AuditEvent.objects.get(action="rollout.start")
    assert rollout.started_at <= start.at
    start_minute = rollout.started_at.replace(second=0, microsecond=0)
    assert all(row.minute == start_minute for row in ArmMinute.objects.all())
    assert all(outcome.served_minute == start_minute for outcome in Outcome.objects.all())
    assert request.requested_at >= start.at
    assert audit_verify_chain()[1] is None

    events = AuditEvent.objects.count()
    demo.seed(stdout=StringIO(), now=timezone.now())  # idempotent
    assert (Rollout.objects.count(), AuditEvent.objects.count()) == (1, events)


def test_without_a_second_version_it_says_so_and_does_nothing(setup):
    setup.challenger.status = "rejected"
    setup.challenger.save()
    out = StringIO()
    demo.seed(stdout=out, now=timezone.now())
    assert "skipped" in out.getvalue() and not Rollout.objects.exists()
