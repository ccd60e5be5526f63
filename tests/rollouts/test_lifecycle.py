"""A rollout's life through its services: draft, start, advance, pause, resume, roll back, abort; and its audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from forge_site.models import AuditEvent
from models_registry.models import AliasAssignment
from models_registry.services import alias_set
from rollouts.models import Rollout, RolloutState
from rollouts.services import (
    RolloutError,
    rollout_abort,
    rollout_advance,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_rollback,
    rollout_start,
)
from tests.rollouts.conftest import POSTGRES_ONLY, actions, draft, ready_version, serve, started, together

pytestmark = pytest.mark.django_db


def holder(setup, alias):
    row = AliasAssignment.objects.filter(model=setup.model, alias=alias, ended_at__isnull=True).first()
    return row.version.version if row else None


def test_a_draft_takes_the_current_champion_and_routes_nothing(setup):
    rollout = draft(setup, plan=[{"share": 10, "min_minutes": 5}, 50])
    assert (rollout.state, rollout.challenger_share, rollout.champion) == ("draft", 0.0, setup.champion)
    assert rollout.plan == [
        {"share": 10.0, "min_minutes": 5, "min_samples": 0},
        {"share": 50.0, "min_minutes": 0, "min_samples": 0},
    ]
    assert rollout.guardrails["min_samples"] == 200 and rollout.primary_metric["name"] == "success"
    assert len(rollout.salt) == 16
    event = AuditEvent.objects.get(action="rollout.create")
    assert event.object_type == "rollouts.rollout"
    assert {"model": "credit-risk", "champion": "1.0.0", "challenger": "1.1.0"}.items() <= event.after.items()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"plan": []}, "plan"),
        ({"plan": [50, 25]}, "plan[1]"),
        ({"plan": [0]}, "plan[0]"),
        ({"plan": [{"share": 5, "wait": 3}]}, "plan[0]"),
        ({"plan": [5], "guardrails": {"max_latency": 2}}, "guardrails"),
        ({"plan": [5], "primary_metric": "accuracy"}, "primary_metric"),
        ({"plan": [5], "unit_key": "user id!"}, "unit_key"),
        ({"plan": [5], "advance_mode": "sometimes"}, "advance_mode"),
    ],
)
def test_bad_drafts_are_refused_naming_the_field(setup, kwargs, field):
    with pytest.raises(RolloutError) as caught:
        draft(setup, **kwargs)
    assert caught.value.field == field
    assert not Rollout.objects.exists()


def test_the_challenger_must_be_a_ready_version_of_the_model_other_than_the_champion(setup):
    with pytest.raises(RolloutError, match="already the champion"):
        rollout_create(model=setup.model, challenger=setup.champion, plan=[5], actor=setup.engineer)
    setup.challenger.status = "validating"
    setup.challenger.save()
    with pytest.raises(RolloutError) as caught:
        draft(setup)
    assert caught.value.code == "not_ready"


def test_a_model_without_a_champion_cannot_have_a_rollout(setup):
    from models_registry.services import model_create

    bare = model_create(name="fraud", owner=setup.engineer)
    version = ready_version(bare, "0.1.0", setup.engineer)
    with pytest.raises(RolloutError) as caught:
        rollout_create(model=bare, challenger=version, plan=[5], actor=setup.engineer)
    assert caught.value.code == "no_champion" and "aliases/champion" in caught.value.message


def test_starting_routes_the_first_share_and_gives_the_challenger_its_alias(setup):
    rollout = started(setup)
    assert (rollout.state, rollout.challenger_share, rollout.step_index) == ("running", 5.0, 0)
    assert rollout.started_at is not None and rollout.revision == 2
    assert holder(setup, "challenger") == "1.1.0" and holder(setup, "champion") == "1.0.0"
    assert actions()[-3:] == ["rollout.create", "alias.move", "rollout.start"]
    with pytest.raises(RolloutError) as caught:
        rollout_start(rollout=rollout, actor=setup.engineer)
    assert caught.value.status == 409 and caught.value.code == "wrong_state"


def test_a_second_rollout_of_the_model_cannot_start_while_one_runs(setup):
    started(setup)
    other = ready_version(setup.model, "1.2.0", setup.engineer, seed=2)
    second = rollout_create(model=setup.model, challenger=other, plan=[10], actor=setup.engineer)
    with pytest.raises(RolloutError) as caught:
        rollout_start(rollout=second, actor=setup.engineer)
    assert caught.value.status == 409 and caught.value.code == "rollout_active"
    assert "#1" in caught.value.message or "running" in caught.value.message
    assert Rollout.objects.get(pk=second.pk).state == "draft"


def test_the_database_itself_refuses_a_second_active_rollout(setup):
    first = started(setup)
    other = ready_version(setup.model, "1.2.0", setup.engineer, seed=2)
    second = rollout_create(model=setup.model, challenger=other, plan=[10], actor=setup.engineer)
    with pytest.raises(IntegrityError):  # not only a check in the service: a partial unique index
        Rollout.objects.filter(pk=second.pk).update(state=RolloutState.PAUSED)
    assert first.state == "running"


def test_a_draft_refuses_to_start_when_the_champion_moved(setup):
    rollout = draft(setup)
    other = ready_version(setup.model, "1.2.0", setup.engineer, seed=2)
    alias_set(model=setup.model, alias="champion", version=other, actor=setup.manager, reason="hotfix")
    with pytest.raises(RolloutError) as caught:
        rollout_start(rollout=rollout, actor=setup.engineer)
    assert caught.value.code == "champion_moved" and "1.2.0" in caught.value.message


def test_advancing_before_the_minimums_needs_an_override_reason(setup):
    rollout = started(setup, plan=[{"share": 5, "min_minutes": 30, "min_samples": 100}, 50])
    with pytest.raises(RolloutError) as caught:
        rollout_advance(rollout=rollout, actor=setup.engineer)
    assert caught.value.code == "minimums_unmet" and caught.value.field == "override_reason"
    assert "0 of the step's 100" in caught.value.message and "of its 30 minutes" in caught.value.message
    rollout = rollout_advance(rollout=rollout, actor=setup.engineer, override_reason="load test done elsewhere")
    assert (rollout.step_index, rollout.challenger_share) == (1, 50.0)
    event = AuditEvent.objects.filter(action="rollout.advance").get()
    assert event.after["override_reason"] == "load test done elsewhere"
    assert event.after["step"] == 2 and event.after["share"] == 50.0 and event.before["share"] == 5.0
    with pytest.raises(RolloutError) as caught:
        rollout_advance(rollout=rollout, actor=setup.engineer)
    assert caught.value.code == "last_step"


def test_a_step_whose_minimums_are_met_advances_without_a_reason(setup):
    rollout = started(setup, plan=[{"share": 5, "min_minutes": 1, "min_samples": 10}, 50])
    serve(rollout, "challenger", 12)
    later = timezone.now() + timedelta(minutes=2)
    rollout = rollout_advance(rollout=rollout, actor=setup.engineer, now=later)
    event = AuditEvent.objects.filter(action="rollout.advance").get()
    assert "override_reason" not in event.after and rollout.challenger_share == 50.0


def test_a_plain_list_plan_advances_whenever_someone_advances_it(setup):
    rollout = started(setup)
    for share in (25, 50, 100):
        rollout = rollout_advance(rollout=rollout, actor=setup.engineer)
        assert rollout.challenger_share == share


def test_pause_sends_everyone_to_the_champion_and_resume_restores_the_step(setup):
    rollout = rollout_advance(rollout=started(setup), actor=setup.engineer)
    rollout = rollout_pause(rollout=rollout, actor=setup.manager, reason="incident elsewhere")
    assert (rollout.state, rollout.challenger_share) == ("paused", 0.0)
    with pytest.raises(RolloutError):
        rollout_advance(rollout=rollout, actor=setup.engineer)
    rollout = rollout_resume(rollout=rollout, actor=setup.manager)
    assert (rollout.state, rollout.challenger_share, rollout.step_index) == ("running", 25.0, 1)
    assert actions()[-2:] == ["rollout.pause", "rollout.resume"]


def test_rollback_sets_the_challenger_to_zero_clears_its_alias_and_says_why(setup):
    rollout = started(setup)
    with pytest.raises(RolloutError) as caught:
        rollout_rollback(rollout=rollout, actor=setup.manager, reason="  ")
    assert caught.value.field == "reason"
    rollout = rollout_rollback(rollout=rollout, actor=setup.manager, reason="customer complaints")
    assert (rollout.state, rollout.challenger_share, rollout.end_reason) == ("rolled_back", 0.0, "customer complaints")
    assert holder(setup, "challenger") is None and holder(setup, "champion") == "1.0.0"
    event = AuditEvent.objects.get(action="rollout.rollback")
    assert event.after["automatic"] is False and event.after["reason"] == "customer complaints"
    assert event.actor_label == "mo"
    with pytest.raises(RolloutError):
        rollout_rollback(rollout=rollout, actor=setup.manager, reason="again")


def test_only_a_draft_can_be_aborted(setup):
    rollout = rollout_abort(rollout=draft(setup), actor=setup.engineer, reason="wrong challenger")
    assert rollout.state == "aborted" and rollout.end_reason == "wrong challenger"
    with pytest.raises(RolloutError):
        rollout_abort(rollout=started(setup), actor=setup.engineer)


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_two_rollouts_of_one_model_started_at_once_one_wins(setup):
    other = ready_version(setup.model, "1.2.0", setup.engineer, seed=2)
    first = draft(setup)
    second = rollout_create(model=setup.model, challenger=other, plan=[10], actor=setup.engineer)
    results, errors = together(
        lambda: rollout_start(rollout=first, actor=setup.engineer),
        lambda: rollout_start(rollout=second, actor=setup.engineer),
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], RolloutError) and errors[0].code == "rollout_active" and errors[0].status == 409
    assert Rollout.objects.filter(state="running").count() == 1
    assert actions().count("rollout.start") == 1


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_one_rollout_started_twice_at_once_starts_once(setup):
    rollout = draft(setup)
    results, errors = together(*[lambda: rollout_start(rollout=rollout, actor=setup.engineer)] * 3)
    assert len(results) == 1 and {e.code for e in errors} == {"wrong_state"}
    assert actions().count("rollout.start") == 1
