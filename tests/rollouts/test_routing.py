"""Sticky assignment: deterministic, monotone as the share rises, uniform, independent across rollouts."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from rollouts import routing
from rollouts.routing import CHALLENGER, CHAMPION, MAX_UNIT_BYTES, Router, UnitTooLong
from rollouts.stats import srm_check

REPO = Path(__file__).resolve().parent.parent.parent
SALT = "5eed5a17c0ffee00"
UNITS = [f"user-{i}" for i in range(100_000)]


def test_a_unit_lands_where_blake2b_of_salt_and_unit_puts_it():
    # The scheme itself is the contract: changing it would reassign every unit of a running rollout.
    for unit in ("user-42", "ü-ñ-€", "x" * MAX_UNIT_BYTES):
        digest = hashlib.blake2b((SALT + unit).encode(), digest_size=8).digest()
        position = int.from_bytes(digest, "big") / 2**64
        assert routing.unit_position(SALT, unit) == position
        for share in (0.0, 5.0, 37.5, 100.0):
            expected = CHALLENGER if position < share / 100 else CHAMPION
            assert Router(SALT, share).assign(unit).arm == expected


def test_assignment_is_the_same_in_another_process_with_another_hash_seed():
    code = (
        "from rollouts.routing import Router; r = Router('5eed5a17c0ffee00', 30.0); "
        "print(''.join('1' if r.assign(f'user-{i}').arm == 'challenger' else '0' for i in range(2000)))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout.strip())
    here = Router(SALT, 30.0)
    assert outputs == {"".join("1" if here.assign(f"user-{i}").arm == CHALLENGER else "0" for i in range(2000))}


def test_raising_the_share_only_moves_units_from_champion_to_challenger():
    previous: set[str] = set()
    for share in (0, 1, 5, 25, 50, 99.99, 100):
        challenger = {u for u in UNITS[:20_000] if Router(SALT, share).assign(u).arm == CHALLENGER}
        assert previous <= challenger, f"a unit left the challenger when the share rose to {share}%"
        moved = challenger - previous
        assert all(routing.unit_position(SALT, u) < share / 100 for u in moved)
        previous = challenger
    assert len(previous) == 20_000


def test_zero_sends_everyone_to_the_champion_and_restoring_the_share_restores_every_unit():
    before = Router(SALT, 25).assign_many(UNITS[:5000])
    assert set(Router(SALT, 0).assign_many(UNITS[:5000])) == {CHAMPION}
    assert Router(SALT, 25).assign_many(UNITS[:5000]) == before


def test_the_observed_share_matches_the_plan_and_passes_the_srm_check():
    arms = Router(SALT, 10).assign_many(UNITS)
    challenger = arms.count(CHALLENGER)
    assert abs(challenger / len(UNITS) - 0.10) < 0.003  # 100,000 units: one standard deviation is 0.095 points
    srm = srm_check([len(UNITS) - challenger, challenger], [0.9, 0.1])
    assert srm is not None and not srm.mismatch


def test_positions_are_uniform():
    positions = [routing.unit_position(SALT, u) for u in UNITS[:50_000]]
    assert scipy_stats.kstest(positions, "uniform").pvalue > 0.001
    counts = [0] * 100
    for p in positions:
        counts[int(p * 100)] += 1
    assert scipy_stats.chisquare(counts).pvalue > 0.001


def test_two_rollouts_assign_independently():
    first = Router("a" * 16, 10).assign_many(UNITS)
    second = Router("b" * 16, 10).assign_many(UNITS)
    table = [[0, 0], [0, 0]]
    for a, b in zip(first, second, strict=True):
        table[a == CHALLENGER][b == CHALLENGER] += 1
    assert scipy_stats.chi2_contingency(table).pvalue > 0.001
    assert abs(table[1][1] / len(UNITS) - 0.01) < 0.002  # 10% of 10%


def test_a_request_without_a_unit_is_assigned_at_random_and_says_so():
    router = Router(SALT, 30, rng=random.Random(7))
    draws = [router.assign(None) for _ in range(20_000)] + [router.assign("") for _ in range(20_000)]
    assert {a.sticky for a in draws} == {False}
    assert {a.assignment for a in draws} == {"random"}
    share = sum(a.arm == CHALLENGER for a in draws) / len(draws)
    assert abs(share - 0.30) < 0.015
    assert {Router(SALT, 0).assign(None).arm for _ in range(1000)} == {CHAMPION}
    assert {Router(SALT, 100).assign(None).arm for _ in range(1000)} == {CHALLENGER}
    assert Router(SALT, 30).assign("user-1").assignment == "sticky"


def test_a_10_kb_unit_id_is_refused_with_a_message_that_says_how_long_it_may_be():
    router = Router(SALT, 50)
    with pytest.raises(UnitTooLong) as caught:
        router.assign("u" * 10_240)
    assert caught.value.length == 10_240
    assert "10240 bytes" in str(caught.value) and "1024 bytes" in str(caught.value)
    with pytest.raises(UnitTooLong):
        router.assign_many(["ok", "u" * 10_240])
    router.assign("u" * MAX_UNIT_BYTES)  # exactly at the limit is fine
    with pytest.raises(UnitTooLong):  # the limit counts UTF-8 bytes, not characters
        router.assign("€" * (MAX_UNIT_BYTES // 3 + 1))


def test_a_unit_with_a_lone_surrogate_is_hashed_not_refused():
    unit = "user-\ud800"
    assert Router(SALT, 50).assign(unit) == Router(SALT, 50).assign(unit)
    assert routing.unit_position(SALT, unit) != routing.unit_position(SALT, "user-")


def test_assign_many_agrees_with_assign():
    router = Router(SALT, 33.3)
    assert router.assign_many(UNITS[:5000]) == [router.assign(u).arm for u in UNITS[:5000]]
    with pytest.raises(ValueError):
        router.assign_many(["user-1", ""])


@pytest.mark.parametrize("share", [-0.01, 100.01, float("nan")])
def test_a_share_outside_0_to_100_is_refused(share):
    with pytest.raises(ValueError):
        Router(SALT, share)


def test_a_new_salt_is_16_hex_characters_and_differs_each_time():
    salts = {routing.new_salt() for _ in range(100)}
    assert len(salts) == 100 and all(len(s) == 16 and int(s, 16) >= 0 for s in salts)
    with pytest.raises(ValueError):
        Router("", 10)


def test_the_pure_modules_import_neither_django_nor_celery():
    code = (
        "import sys; import rollouts.routing, rollouts.stats, rollouts.aggregates, rollouts.guardrails; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'kombu', 'forge_site')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_serving_hot_path_does_not_import_scipy():
    # The serving process needs routing and the aggregates only; scipy costs half a second to import.
    code = (
        "import sys; import rollouts.routing, rollouts.aggregates; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'numpy')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
