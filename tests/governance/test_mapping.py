"""How evidence and what people write become a subcategory's status, with the reason in words (pure)."""

from __future__ import annotations

import pytest

from governance.nist_rmf.mapping import Kind, KindEvidence, Status, assess


def nothing(*available: Kind) -> dict[Kind, KindEvidence]:
    """Every kind recorded by this Forge but empty; kinds not in `available` (when given) not recorded at all."""
    return {kind: KindEvidence(kind, available=not available or kind in available) for kind in Kind}


def item(kind: Kind, n: int, ok: bool | None = True, summary: str = "") -> dict:
    return {"id": f"E-{n:03d}", "kind": str(kind), "summary": summary or f"{kind} item {n}", "ok": ok}


def with_items(found: dict[Kind, KindEvidence], kind: Kind, *items: dict, gaps: tuple[str, ...] = ()) -> dict:
    return {**found, kind: KindEvidence(kind, tuple(items), gaps)}


def test_a_subcategory_no_record_can_show_needs_an_attestation_and_is_never_met_on_its_own():
    result = assess("GOVERN 1.1", nothing())
    assert result.status == Status.ATTESTATION_REQUIRED
    assert "a person must attest" in result.reason


def test_an_attestation_meets_such_a_subcategory_and_says_who():
    result = assess("GOVERN 1.1", nothing(), attestation="Legal reviewed the model.", attested_by="olga")
    assert result.status == Status.MET and result.basis == "attestation"
    assert "Attested by olga" in result.reason


def test_no_evidence_where_evidence_is_needed_is_not_met_and_says_what_is_missing():
    result = assess("MEASURE 2.1", nothing())
    assert result.status == Status.NOT_MET
    assert result.reason == "No evidence in the period: no parity runs or benchmark runs for this report's scope."


def test_no_incident_in_the_period_is_no_failure():
    result = assess("MANAGE 4.3", nothing())
    assert result.status == Status.ATTESTATION_REQUIRED
    assert "no alerts" in result.reason


def test_a_kind_this_forge_does_not_record_yet_asks_for_an_attestation():
    result = assess("MEASURE 2.11", nothing(Kind.PARITY))
    assert result.status == Status.ATTESTATION_REQUIRED
    assert "Forge does not record fairness evaluations yet" in result.reason


def test_passing_evidence_meets_what_records_can_show_whole_and_cites_it():
    found = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 4), item(Kind.PARITY, 5))
    result = assess("MEASURE 2.1", found)
    assert result.status == Status.MET and result.basis == "evidence"
    assert "(E-004, E-005)" in result.reason
    assert [i["id"] for i in result.evidence] == ["E-004", "E-005"]


def test_evidence_that_shows_only_part_is_partially_met_until_someone_attests_the_rest():
    found = with_items(nothing(), Kind.INSPECTION, item(Kind.INSPECTION, 2))
    partial = assess("MEASURE 2.7", found)
    assert partial.status == Status.PARTIALLY_MET
    assert "A person must attest that security and resilience beyond the artifact" in partial.reason
    attested = assess("MEASURE 2.7", found, attestation="Pen-tested in May.", attested_by="olga")
    assert attested.status == Status.MET and attested.basis == "evidence and attestation"


def test_failing_evidence_alone_is_not_met_and_names_it():
    found = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 7, ok=False, summary="parity m 1.0 vs ONNX: FAIL"))
    result = assess("MEASURE 2.1", found)
    assert result.status == Status.NOT_MET
    assert "parity m 1.0 vs ONNX: FAIL" in result.reason


def test_failing_beside_passing_evidence_or_a_gap_is_partially_met():
    found = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 1), item(Kind.PARITY, 2, ok=False))
    assert assess("MEASURE 2.1", found).status == Status.PARTIALLY_MET
    gap = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 1), gaps=("m 2.0 has no parity run in the period",))
    result = assess("MEASURE 2.1", gap)
    assert result.status == Status.PARTIALLY_MET and "m 2.0 has no parity run" in result.reason


def test_a_rule_needing_every_kind_is_partially_met_without_one_of_them():
    found = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 1))
    result = assess("MEASURE 2.5", found)
    assert result.status == Status.PARTIALLY_MET
    assert "there are no benchmark runs" in result.reason


def test_not_applicable_wins_and_carries_its_justification():
    found = with_items(nothing(), Kind.PARITY, item(Kind.PARITY, 1))
    result = assess("MEASURE 2.1", found, not_applicable=True, justification="A rules engine; nothing to test.")
    assert result.status == Status.NOT_APPLICABLE
    assert result.reason.endswith("A rules engine; nothing to test.")


def test_an_unknown_subcategory_is_refused():
    with pytest.raises(KeyError):
        assess("GOVERN 9.9", nothing())
