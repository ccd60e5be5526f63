"""Promotion with four eyes: requirements with their evidence, overrides, double clicks, concurrent approvals."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from forge_site.models import AuditEvent
from models_registry.models import AliasAssignment
from rollouts.models import PromotionPolicy, PromotionRequest, Rollout
from rollouts.requirements import promotion_requirements
from rollouts.services import (
    RolloutError,
    promotion_approve,
    promotion_reject,
    promotion_request,
    rollout_rollback,
)
from tests.evidence_results import benchmark_result, evaluation_job, parity_result
from tests.rollouts.conftest import POSTGRES_ONLY, actions, serve, started, together

pytestmark = pytest.mark.django_db


def holder(setup, alias):
    row = AliasAssignment.objects.filter(model=setup.model, alias=alias, ended_at__isnull=True).first()
    return row.version.version if row else None


def give_evidence(setup, *, parity_noise=0.0, challenger_p50=1.0, samples=1200, key="a1b2c3d4e5f60718"):
    """A parity run of the challenger against the champion, benchmarks of both on one machine, and traffic."""
    result = parity_result(noise=parity_noise)
    params = {"reference": {"kind": "version", "version": "1.0.0", "version_id": setup.champion.pk}, "samples": 256}
    evaluation_job(setup.challenger, "parity", result=result, params=params)
    evaluation_job(setup.champion, "benchmark", result=benchmark_result(p50_ms={1: 1.0, 64: 5.0}, key=key))
    evaluation_job(setup.challenger, "benchmark", result=benchmark_result(p50_ms={1: challenger_p50, 8: 2.0}, key=key))


def running(setup, *, samples=1200):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", samples)
    serve(rollout, "challenger", samples)
    return rollout


def statuses(rollout):
    return {r.key: r.status for r in promotion_requirements(rollout=Rollout.objects.get(pk=rollout.pk))}


def test_requirements_report_each_piece_of_evidence_with_a_link(setup):
    rollout = running(setup)
    assert statuses(rollout) == {"parity": "unmet", "benchmark": "unmet", "drift": "not available", "samples": "met"}
    give_evidence(setup)
    requirements = {r.key: r for r in promotion_requirements(rollout=rollout)}
    assert requirements["parity"].status == "met" and "/runs/" in requirements["parity"].evidence_url
    assert requirements["benchmark"].status == "met" and "1.00x" in requirements["benchmark"].detail
    assert requirements["benchmark"].evidence_url.startswith("/registry/models/credit-risk/benchmarks/compare/?")
    assert requirements["drift"].status == "not available"
    assert requirements["samples"].detail == "The challenger has served 1,200."


def test_failing_evidence_is_unmet(setup):
    rollout = running(setup, samples=300)
    give_evidence(setup, parity_noise=1.0, challenger_p50=1.5)
    assert statuses(rollout) == {"parity": "unmet", "benchmark": "unmet", "drift": "not available", "samples": "unmet"}


def test_benchmarks_on_different_hardware_do_not_count(setup):
    rollout = running(setup)
    evaluation_job(setup.champion, "benchmark", result=benchmark_result(p50_ms={1: 1.0}, key="machine-a"))
    evaluation_job(setup.challenger, "benchmark", result=benchmark_result(p50_ms={1: 1.0}, key="machine-b"))
    benchmark = next(r for r in promotion_requirements(rollout=rollout) if r.key == "benchmark")
    assert benchmark.status == "unmet" and "same hardware" in benchmark.detail


def test_a_policy_names_what_a_model_needs(setup):
    PromotionPolicy.objects.create(
        model=setup.model,
        require_parity=False,
        benchmark_p95_budget=None,
        require_no_open_drift_alert=False,
        min_samples=10,
    )
    assert statuses(running(setup, samples=20)) == {"samples": "met"}


def test_asking_moves_the_rollout_to_awaiting_approval_and_records_the_requirements(setup):
    rollout = running(setup)
    request = promotion_request(rollout=rollout, actor=setup.engineer, comment="two weeks clean")
    assert Rollout.objects.get(pk=rollout.pk).state == "awaiting_approval"
    assert {r["key"] for r in request.requirements} == {"parity", "benchmark", "drift", "samples"}
    event = AuditEvent.objects.get(action="promotion.request")
    assert event.object_type == "rollouts.promotionrequest"
    assert event.after["unmet"] == ["parity", "benchmark"] and event.after["model"] == "credit-risk"
    with pytest.raises(RolloutError) as caught:
        promotion_request(rollout=rollout, actor=setup.engineer)
    assert caught.value.code == "already_requested"


def test_approval_moves_the_champion_alias_with_the_decision_and_its_audit(setup):
    give_evidence(setup)
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    request = promotion_approve(rollout=rollout, actor=setup.manager, comment="good evidence")
    assert request.status == "approved" and request.decided_by == setup.manager
    assert Rollout.objects.get(pk=rollout.pk).state == "promoted"
    assert holder(setup, "champion") == "1.1.0" and holder(setup, "challenger") is None
    assert actions()[-3:] == ["alias.move", "alias.clear", "promotion.approve"]
    event = AuditEvent.objects.get(action="promotion.approve")
    assert event.after["comment"] == "good evidence" and event.after["unmet"] == []
    assert event.after["not_available"] == ["drift"] and "override_reason" not in event.after
    move = AuditEvent.objects.filter(action="alias.move").first()  # newest first
    assert move.after == {"alias": "champion", "version": "1.1.0", "reason": move.after["reason"]}
    assert "approved" in move.after["reason"]


def test_approval_is_refused_while_a_requirement_is_unmet_unless_overridden(setup):
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    with pytest.raises(RolloutError) as caught:
        promotion_approve(rollout=rollout, actor=setup.manager)
    assert caught.value.code == "requirements_unmet" and caught.value.field == "override_reason"
    assert "Parity of 1.1.0 against 1.0.0" in caught.value.message
    assert holder(setup, "champion") == "1.0.0" and not AuditEvent.objects.filter(action="promotion.approve").exists()
    request = promotion_approve(rollout=rollout, actor=setup.manager, override_reason="parity run on staging")
    assert request.override_reason == "parity run on staging"
    event = AuditEvent.objects.get(action="promotion.approve")
    assert event.after["override_reason"] == "parity run on staging"
    assert event.after["unmet"] == ["parity", "benchmark"]
    assert holder(setup, "champion") == "1.1.0"


def test_the_requester_can_never_decide_their_own_request(setup):
    from django.contrib.auth.models import Group

    give_evidence(setup)
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    # The engineer who asked is made a manager afterwards: still not the one to decide.
    requester = setup.engineer
    requester.groups.set([Group.objects.get(name="Managers")])
    requester = type(requester).objects.get(pk=requester.pk)  # drop the cached roles
    for decide in (
        lambda: promotion_approve(rollout=rollout, actor=requester),
        lambda: promotion_reject(rollout=rollout, actor=requester, comment="no"),
    ):
        with pytest.raises(RolloutError) as caught:
            decide()
        assert caught.value.status == 403 and caught.value.code == "own_request"
        assert "another manager" in caught.value.message
    assert PromotionRequest.objects.get().status == "pending" and holder(setup, "champion") == "1.0.0"
    # The table refuses it from any other path (the admin, a script).
    request = PromotionRequest.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        PromotionRequest.objects.filter(pk=request.pk).update(status="approved", decided_by=requester)


def test_an_engineer_cannot_decide(setup):
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    other_engineer = type(setup.engineer).objects.create_user("ed")
    other_engineer.groups.set(setup.engineer.groups.all())
    with pytest.raises(RolloutError) as caught:
        promotion_approve(rollout=rollout, actor=other_engineer, override_reason="x")
    assert caught.value.status == 403 and PromotionRequest.objects.get().status == "pending"


def test_a_double_clicked_approve_promotes_once(setup):
    give_evidence(setup)
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    first = promotion_approve(rollout=rollout, actor=setup.manager)
    second = promotion_approve(rollout=rollout, actor=setup.manager)
    assert first.pk == second.pk and second.status == "approved"
    assert actions().count("promotion.approve") == 1
    assert AliasAssignment.objects.filter(model=setup.model, alias="champion").count() == 2
    with pytest.raises(RolloutError) as caught:  # another manager, later: told who decided and when
        promotion_approve(rollout=rollout, actor=setup.other_manager)
    assert caught.value.code == "already_decided" and "by mo" in caught.value.message


def test_rejection_needs_a_comment_and_lets_the_rollout_run_on(setup):
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    with pytest.raises(RolloutError):
        promotion_reject(rollout=rollout, actor=setup.manager, comment="")
    request = promotion_reject(rollout=rollout, actor=setup.manager, comment="wait for month-end traffic")
    assert request.status == "rejected"
    assert Rollout.objects.get(pk=rollout.pk).state == "running"
    assert AuditEvent.objects.get(action="promotion.reject").after["comment"] == "wait for month-end traffic"
    promotion_request(rollout=rollout, actor=setup.engineer)  # may ask again


def test_rolling_back_a_promoted_rollout_moves_the_champion_back(setup):
    give_evidence(setup)
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    promotion_approve(rollout=rollout, actor=setup.manager)
    rollout = rollout_rollback(rollout=Rollout.objects.get(pk=rollout.pk), actor=setup.manager, reason="defaults up")
    assert holder(setup, "champion") == "1.0.0" and rollout.state == "rolled_back"
    assert actions()[-2:] == ["alias.move", "rollout.rollback"]


def test_rolling_back_withdraws_a_pending_request(setup):
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    rollout_rollback(rollout=rollout, actor=setup.manager, reason="latency")
    assert PromotionRequest.objects.get().status == "withdrawn"
    with pytest.raises(RolloutError):
        promotion_approve(rollout=rollout, actor=setup.manager)


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_promote_once(setup):
    give_evidence(setup)
    rollout = running(setup)
    promotion_request(rollout=rollout, actor=setup.engineer)
    results, errors = together(
        lambda: promotion_approve(rollout=rollout, actor=setup.manager),
        lambda: promotion_approve(rollout=rollout, actor=setup.other_manager),
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], RolloutError) and errors[0].code == "already_decided"
    assert actions().count("promotion.approve") == 1
    assert AliasAssignment.objects.filter(model=setup.model, alias="champion").count() == 2
    assert holder(setup, "champion") == "1.1.0"
