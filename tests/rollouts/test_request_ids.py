"""Signed request ids: what they say survives the round trip; any change to them is refused."""

from __future__ import annotations

from rollouts import request_ids
from rollouts.plans import plan_text

KEY = request_ids.signing_key("a secret")


def test_an_issued_id_reads_back_its_rollout_arm_and_minute():
    for arm in ("champion", "challenger"):
        issued = request_ids.issue(KEY, 12, arm, 29_000_123)
        assert request_ids.parse(KEY, issued) == (12, arm, 29_000_123)
        assert len(issued) <= request_ids.MAX_LENGTH
    assert request_ids.issue(KEY, 1, "champion", 5) != request_ids.issue(KEY, 1, "champion", 5)  # a fresh nonce


def test_a_changed_id_or_another_key_is_refused():
    issued = request_ids.issue(KEY, 12, "champion", 1000)
    body, _, mac = issued.rpartition("-")
    forged = [
        issued.replace("r12-", "r13-", 1),
        issued.replace("-a-", "-b-", 1),
        body + "-" + ("0" if mac[0] != "0" else "1") + mac[1:],
        issued + "0",
        issued.upper(),
    ]
    assert all(request_ids.parse(KEY, f) is None for f in forged)
    assert request_ids.parse(request_ids.signing_key("another secret"), issued) is None
    for junk in ("", "r1", "r1-a-1-2", "rX-a-zz-00-" + "0" * 16, None, 12):
        assert request_ids.parse(KEY, junk) is None  # type: ignore[arg-type]


def test_a_plan_reads_as_its_shares():
    assert plan_text([{"share": 5.0}, {"share": 12.5}, {"share": 100.0}]) == "5% → 12.5% → 100%"
