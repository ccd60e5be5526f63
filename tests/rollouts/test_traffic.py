"""Assignments, outcomes joined by their signed request ids, and the per-minute aggregates writers flush."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from forge_site.models import AuditEvent
from rollouts import request_ids, selectors
from rollouts.aggregates import ArmWindow
from rollouts.models import ArmMinute, Outcome, Rollout, RolloutUnit
from rollouts.services import (
    RolloutError,
    TrafficDelta,
    outcome_record,
    rollout_assign,
    rollout_pause,
    rollout_rollback,
    traffic_flush,
)
from rollouts.services.traffic import request_id_key
from tests.rollouts.conftest import draft, serve, started

pytestmark = pytest.mark.django_db


def test_assign_is_sticky_counts_the_assignment_and_issues_a_request_id(setup):
    rollout = started(setup)
    first = rollout_assign(rollout=rollout, unit="user-42")
    assert all(rollout_assign(rollout=rollout, unit="user-42").arm == first.arm for _ in range(5))
    assert first.assignment == "sticky" and first.challenger_share == 5.0 and first.unit_key == "user"
    assert first.version == ("1.1.0" if first.arm == "challenger" else "1.0.0")
    issued = request_ids.parse(request_id_key(), first.request_id)
    assert issued is not None and (issued.rollout_id, issued.arm) == (rollout.pk, first.arm)
    traffic = selectors.traffic_window(rollout=rollout)
    assert traffic.total == 6 and traffic.traffic(first.arm) == 6
    assert traffic.expected_challenger == pytest.approx(6 * 0.05)
    assert traffic.units[first.arm] == 1 and RolloutUnit.objects.get().share == 5.0  # the unit, once
    assert not AuditEvent.objects.filter(action__startswith="rollout.assign").exists()  # traffic is not audited


def test_assign_without_a_unit_is_random_and_says_so(setup):
    rollout = started(setup)
    result = rollout_assign(rollout=rollout, unit=None)
    assert result.assignment == "random"
    rollout_assign(rollout=rollout, unit="")
    assert sum(selectors.traffic_window(rollout=rollout).units.values()) == 2 and not RolloutUnit.objects.exists()


def test_a_10_kb_unit_id_is_refused_with_a_400_that_names_the_limit(setup):
    rollout = started(setup)
    with pytest.raises(RolloutError) as caught:
        rollout_assign(rollout=rollout, unit="u" * 10_240)
    assert (caught.value.status, caught.value.code, caught.value.field) == (400, "unit_too_long", "unit")
    assert "1024 bytes" in caught.value.message
    assert not ArmMinute.objects.exists()


def test_a_paused_rollout_assigns_everyone_to_the_champion_and_an_ended_one_refuses(setup):
    rollout = rollout_pause(rollout=started(setup, plan=[100]), actor=setup.manager)
    assert {rollout_assign(rollout=rollout, unit=f"u{i}").arm for i in range(50)} == {"champion"}
    rollout = rollout_rollback(rollout=rollout, actor=setup.manager, reason="done")
    with pytest.raises(RolloutError) as caught:
        rollout_assign(rollout=rollout, unit="u1")
    assert caught.value.code == "not_routing"
    with pytest.raises(RolloutError):
        rollout_assign(rollout=draft(setup), unit="u1")


def test_an_outcome_joins_its_arm_and_minute_at_once(setup):
    rollout = started(setup, plan=[100])
    assigned = rollout_assign(rollout=rollout, unit="user-1")
    outcome, created = outcome_record(rollout=rollout, request_id=assigned.request_id, success=True)
    assert created and outcome.arm == "challenger" and outcome.success is True
    window = selectors.traffic_window(rollout=rollout).arms["challenger"]
    assert (window.success_count, window.successes) == (1, 1)
    value_id = rollout_assign(rollout=rollout, unit="user-2").request_id
    outcome_record(rollout=rollout, request_id=value_id, value=12.5)
    window = selectors.traffic_window(rollout=rollout).arms["challenger"]
    assert (window.value_count, window.value_sum, window.value_sum_sq) == (1, 12.5, 156.25)


def test_the_same_outcome_twice_is_recorded_once_and_a_different_one_is_refused(setup):
    rollout = started(setup)
    request_id = rollout_assign(rollout=rollout, unit="user-1").request_id
    outcome_record(rollout=rollout, request_id=request_id, success=False)
    again, created = outcome_record(rollout=rollout, request_id=request_id, success=False)
    assert not created and Outcome.objects.count() == 1
    assert selectors.traffic_window(rollout=rollout).arms[again.arm].success_count == 1
    with pytest.raises(RolloutError) as caught:
        outcome_record(rollout=rollout, request_id=request_id, success=True)
    assert caught.value.status == 409 and caught.value.code == "duplicate"


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-request-id",
        "r1-b-1c0a3f2-5e8d1f0a9b3c-0000000000000000",  # the right shape, a forged MAC
        "x" * 500,
        "",
    ],
)
def test_outcomes_for_unknown_request_ids_are_refused_and_counted(setup, bad_id):
    rollout = started(setup)
    with pytest.raises(RolloutError) as caught:
        outcome_record(rollout=rollout, request_id=bad_id, success=True)
    assert caught.value.field == "request_id"
    if bad_id:
        assert caught.value.status == 404 and caught.value.code == "unknown_request"
        assert Rollout.objects.get(pk=rollout.pk).rejected_outcomes == 1
    assert not Outcome.objects.exists()


def test_an_id_from_another_rollout_is_unknown_here(setup):
    rollout = started(setup)
    foreign = request_ids.issue(request_id_key(), rollout.pk + 1, "champion", 1000)
    with pytest.raises(RolloutError) as caught:
        outcome_record(rollout=rollout, request_id=foreign, success=True)
    assert caught.value.code == "unknown_request"


@pytest.mark.parametrize(("success", "value"), [(None, None), ("yes", None), (None, float("nan")), (None, True)])
def test_an_outcome_needs_a_boolean_success_or_a_finite_value(setup, success, value):
    rollout = started(setup)
    request_id = rollout_assign(rollout=rollout, unit="user-1").request_id
    with pytest.raises(RolloutError) as caught:
        outcome_record(rollout=rollout, request_id=request_id, success=success, value=value)
    assert caught.value.status == 400


def test_flushes_of_several_writers_and_minutes_add_up(setup):
    rollout = started(setup, plan=[50])
    now = timezone.now()
    serve(rollout, "champion", 100, errors=3, writer="serving:a:1", minute=now)
    serve(rollout, "champion", 100, errors=1, writer="serving:a:1", minute=now)  # the same minute again
    serve(rollout, "challenger", 80, writer="serving:b:2", minute=now)
    serve(rollout, "challenger", 20, writer="serving:b:2", minute=now - timedelta(minutes=1))
    assert ArmMinute.objects.count() == 3
    traffic = selectors.traffic_window(rollout=rollout)
    assert traffic.arms["champion"].requests == 200 and traffic.arms["champion"].errors == 4
    assert traffic.arms["challenger"].requests == 100
    assert traffic.arms["champion"].latency.total == 200
    assert traffic.expected_challenger == pytest.approx(150.0)
    minutes = selectors.traffic_by_minute(rollout=rollout)
    assert [t.total for t in minutes.values()] == [20, 280]


def test_srm_reads_the_planned_split_from_the_shares_requests_were_assigned_at(setup):
    rollout = started(setup, plan=[10, 50])
    # 10% for 10,000 requests, then 50% for 2,000: the challenger should have 1,000 + 1,000.
    serve(rollout, "champion", 9000, share=10)
    serve(rollout, "challenger", 1000, share=10)
    serve(rollout, "champion", 1000, share=50)
    serve(rollout, "challenger", 1000, share=50)
    srm = selectors.rollout_analysis(rollout=rollout, verdicts={}).srm
    assert srm is not None and not srm.mismatch and srm.expected[1] == pytest.approx(2000)
    # A logging path that loses a fifth of the challenger's requests shows as a mismatch.
    other = ArmMinute.objects.filter(rollout=rollout, arm="challenger").first()
    ArmMinute.objects.filter(pk=other.pk).update(requests=800, unitless=800)
    assert selectors.rollout_analysis(rollout=rollout, verdicts={}).srm.mismatch


def test_counting_units_keeps_the_srm_check_honest_where_counting_requests_cries_wolf():
    """200 rollouts (salts) of 2,000 units at 10%, each unit sending 1 to 60 requests: nothing is wrong with any."""
    from rollouts.routing import Router
    from rollouts.stats import srm_check

    by_units = by_requests = 0
    for salt in range(200):
        router = Router(f"salt-{salt}", 10.0)
        units, requests = [0, 0], [0, 0]
        for i in range(2000):
            arm = router.assign(f"user-{i}").arm == "challenger"
            units[arm] += 1
            requests[arm] += 1 + (i * 7919) % 60
        by_units += srm_check(units, [0.9, 0.1]).mismatch
        by_requests += srm_check(requests, [0.9, 0.1]).mismatch
    assert by_units <= 2  # the nominal 0.1%
    assert by_requests > 50  # 122 of 200 here: requests of one unit are not independent draws


def test_srm_counts_units_once_however_many_requests_each_sends(setup):
    """Heavy users are not a mismatch: 2,000 units at 10% sending 1 to 60 requests each."""
    from rollouts.routing import Router
    from rollouts.services import UnitSeen, units_record

    rollout = started(setup, plan=[10])
    Rollout.objects.filter(pk=rollout.pk).update(salt="5eed5a17c0ffee00")  # seeded: the checks below are exact
    router, now = Router("5eed5a17c0ffee00", 10.0), timezone.now()
    windows = {"champion": ArmWindow(), "challenger": ArmWindow()}
    units = []
    for i in range(2000):
        assignment, point = router.assign_with_point(f"user-{i}")
        units.append(UnitSeen(point, assignment.arm, 10.0, now))
        for _ in range(1 + (i * 7919) % 60):
            windows[assignment.arm].record_request(3.0)
    traffic_flush(
        writer="serving:t:1",
        deltas=[TrafficDelta(rollout.pk, arm, now, w, share_sum=w.requests * 0.1) for arm, w in windows.items()],
    )
    units_record(rollout_id=rollout.pk, units=units)
    units_record(rollout_id=rollout.pk, units=units[:500])  # sent again by another process: counted once
    analysis = selectors.rollout_analysis(rollout=rollout, verdicts={})
    assert sum(analysis.srm.observed) == 2000 and not analysis.srm.mismatch
    # Units of the challenger that never reach the record (a writer that loses them) are a mismatch.
    lost = list(RolloutUnit.objects.filter(rollout=rollout, arm="challenger").values_list("pk", flat=True)[:80])
    RolloutUnit.objects.filter(pk__in=lost).delete()
    assert selectors.rollout_analysis(rollout=rollout, verdicts={}).srm.mismatch


def test_a_flush_names_its_writer(setup):
    rollout = started(setup)
    with pytest.raises(ValueError):
        traffic_flush(writer="", deltas=[TrafficDelta(rollout.pk, "champion", timezone.now(), ArmWindow())])
