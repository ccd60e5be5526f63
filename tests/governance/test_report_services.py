"""Report services: drafts, what officers write, review, finalizing into a hashed snapshot, revisions, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forge_site.audit import audit_verify_chain
from forge_site.models import AuditEvent, Job
from governance.models import Report, ReportStatus
from governance.reports.snapshot import canonical_json, snapshot_sha256
from governance.selectors.reports import report_content
from governance.services.reports import (
    ReportError,
    parse_period,
    report_create,
    report_finalize,
    report_refresh_evidence,
    report_revise,
    report_subcategory_update,
    report_submit,
    report_update,
)
from models_registry.services import model_create
from tests.governance.helpers import append_audit_events

pytestmark = pytest.mark.django_db


def sub(content: dict, sub_id: str) -> dict:
    return next(s for s in content["subcategories"] if s["id"] == sub_id)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


# --- the period -------------------------------------------------------------------------------------------------


def test_dates_cover_whole_days_inclusive():
    start, end = parse_period("2026-01-01", "2026-03-31")
    assert start == datetime(2026, 1, 1, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_datetimes_are_taken_as_given_and_naive_ones_as_utc():
    start, end = parse_period("2026-01-01T08:30:00+02:00", "2026-01-02T12:00:00")
    assert start == datetime(2026, 1, 1, 6, 30, tzinfo=UTC)
    assert end == datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        ("2026-02-30", "2026-03-01", "period.start", "must be a date"),
        ("yesterday", "2026-03-01", "period.start", "must be a date"),
        ("", "2026-03-01", "period.start", "is required"),
        ("2026-03-02", "2026-03-01", "period.end", "ends before it starts"),
        ("1900-01-01", "2026-03-01", "period.start", "between 2000 and 2100"),
    ],
)
def test_a_bad_period_is_refused_naming_the_field(start, end, field, words):
    with pytest.raises(ReportError, match=words) as caught:
        parse_period(start, end)
    assert caught.value.field == field and caught.value.status == 400


# --- drafts -----------------------------------------------------------------------------------------------------


def test_a_draft_collects_its_evidence_and_is_audited(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    assert report.status == ReportStatus.DRAFT and report.evidence_collected_at is not None
    content = report_content(report)
    assert len(content["subcategories"]) == 72
    # values are copied, not linked: the artifact's hash is in the report itself
    lineage = {i["version"]: i for i in sub(content, "MAP 4.1")["evidence"]}
    assert lineage["1.1.0"]["values"]["sha256"] == evidenced.v2.sha256
    assert lineage["1.1.0"]["values"]["parent"] == "1.0.0"
    # 1.1.0 has parity and benchmark runs; 1.0.0 served as champion without any: a gap, named
    measure = sub(content, "MEASURE 2.1")
    assert measure["status"] == "partially_met"
    assert "credit-risk 1.0.0 has no parity run in the period" in measure["reason"]
    assert sub(content, "MANAGE 1.1")["status"] == "met"  # go/no-go: champion moves with reasons
    assert sub(content, "MEASURE 2.8")["status"] == "met"  # chain verified, trail present
    assert sub(content, "GOVERN 1.6")["status"] == "partially_met"  # resourcing needs an attestation
    assert sub(content, "GOVERN 1.1")["status"] == "attestation_required"
    # no baseline, monitor or drift run for credit-risk: production monitoring is not met (records could show it)
    assert sub(content, "MEASURE 2.4")["status"] == "not_met"
    assert sub(content, "MEASURE 2.4")["reason"].startswith("No evidence in the period: no drift monitoring")
    event = AuditEvent.objects.get(action="report.create")
    assert event.object_id == str(report.pk) and event.after["model"] == "credit-risk"
    assert event.after["versions"] == "all"


def test_a_model_without_evidence_says_so_subcategory_by_subcategory(officer, engineer):
    model = model_create(name="bare", owner=engineer)
    report = report_create(actor=officer, model=model, start="2026-01-01", end="2026-12-31")
    content = report_content(report)
    reasons = {s["id"]: s["reason"] for s in content["subcategories"]}
    assert all(reasons.values())
    assert reasons["MEASURE 2.1"] == (
        "No evidence in the period: no parity runs or benchmark runs for this report's scope."
    )
    assert reasons["MEASURE 2.7"].startswith("No evidence in the period: no artifact inspection")
    assert sub(content, "MEASURE 2.7")["status"] == "not_met"
    assert content["coverage"]["overall"]["counts"]["met"] <= 1  # at most the verified audit chain
    assert content["appendix"]["artifacts"] == []


def test_chosen_versions_limit_the_scope(officer, evidenced):
    report = report_create(
        actor=officer, model=evidenced.model, versions=["1.0.0"], start="2020-01-01", end="2030-12-31"
    )
    content = report_content(report)
    assert content["report"]["versions"] == [
        {"model": "credit-risk", "version": "1.0.0", "sha256": evidenced.v1.sha256}
    ]
    assert [a["version"] for a in content["appendix"]["artifacts"]] == ["1.0.0"]
    # 1.0.0 was never tested: no run of the chosen version is no evidence
    assert sub(content, "MEASURE 2.1")["status"] == "not_met"
    only_tested = report_create(
        actor=officer, model=evidenced.model, versions=["1.1.0"], start="2020-01-01", end="2030-12-31"
    )
    measure = sub(report_content(only_tested), "MEASURE 2.1")
    assert measure["status"] == "met" and {i["kind"] for i in measure["evidence"]} == {"parity", "benchmark"}


def test_unknown_or_misplaced_versions_are_refused(officer, evidenced):
    with pytest.raises(ReportError, match=r"has no version '9\.9'") as caught:
        report_create(actor=officer, model=evidenced.model, versions=["9.9"], start="2026-01-01", end="2026-02-01")
    assert caught.value.field == "versions"
    with pytest.raises(ReportError, match="whole-inventory report covers every version"):
        report_create(actor=officer, model=None, versions=["1.0.0"], start="2026-01-01", end="2026-02-01")
    assert not Report.objects.exists()


def test_a_whole_inventory_report_covers_every_model(officer, evidenced, engineer):
    model_create(name="fraud", owner=engineer)
    report = report_create(actor=officer, model=None, start="2020-01-01", end="2030-12-31")
    content = report_content(report)
    assert content["report"]["model"] is None and content["report"]["scope"] == "whole inventory"
    inventory = sub(content, "GOVERN 1.6")["evidence"]
    assert {i["model"] for i in inventory} == {"credit-risk", "fraud"}


# --- what officers write ----------------------------------------------------------------------------------------


def test_an_attestation_records_who_and_when_and_is_audited(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    entry = report_subcategory_update(
        report=report,
        actor=officer,
        sub_id="GOVERN-1.1",
        attestation="Legal reviewed ECOA and FCRA duties on 2026-02-01.",
    )
    assert entry.attested_by == officer and entry.attested_at is not None
    govern = sub(report_content(report), "GOVERN 1.1")
    assert govern["status"] == "met" and govern["basis"] == "attestation"
    assert govern["attestation"]["by"] == "olga"
    event = AuditEvent.objects.filter(action="report.update").latest("seq")
    assert event.before == {"subcategory": "GOVERN 1.1", "attestation": ""}
    assert event.after["attestation"].startswith("Legal reviewed")


def test_not_applicable_needs_a_justification(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    with pytest.raises(ReportError, match="needs a justification") as caught:
        report_subcategory_update(report=report, actor=officer, sub_id="MEASURE 2.2", not_applicable=True)
    assert caught.value.field == "justification"
    report_subcategory_update(
        report=report,
        actor=officer,
        sub_id="MEASURE 2.2",
        not_applicable=True,
        justification="No human subjects take part in any evaluation.",
    )
    content = report_content(report)
    assert sub(content, "MEASURE 2.2")["status"] == "not_applicable"
    assert content["coverage"]["functions"]["MEASURE"]["applicable"] == 21


def test_text_is_stored_as_written_html_and_all(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    hostile = '<script>alert("x")</script><b>bold</b>'
    report_subcategory_update(report=report, actor=officer, sub_id="MAP 1.1", narrative=hostile)
    assert sub(report_content(report), "MAP 1.1")["narrative"] == hostile  # escaping is the renderer's job


def test_an_unknown_subcategory_is_not_found(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    for bad in ("GOVERN-9.9", "nonsense"):
        with pytest.raises(ReportError) as caught:
            report_subcategory_update(report=report, actor=officer, sub_id=bad, narrative="x")
        assert caught.value.status == 404


def test_a_draft_goes_to_review_once(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report = report_submit(report=report, actor=officer)
    assert report.status == ReportStatus.IN_REVIEW and report.submitted_by == officer
    with pytest.raises(ReportError) as caught:
        report_submit(report=report, actor=officer)
    assert caught.value.status == 409
    report_update(report=report, actor=officer, executive_summary="Reviewed by the second line.")  # still editable
    assert "report.submit" in actions()


# --- finalizing -------------------------------------------------------------------------------------------------


def test_finalizing_freezes_a_hashed_snapshot_with_signer_and_time(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report_subcategory_update(report=report, actor=officer, sub_id="GOVERN 1.1", attestation="Reviewed.")
    report, job = report_finalize(report=report, actor=officer)
    stored = Report.objects.get(pk=report.pk)
    assert stored.status == ReportStatus.FINALIZED and stored.signer == "olga" and stored.finalized_by == officer
    assert len(stored.snapshot_sha256) == 64
    assert snapshot_sha256(stored.snapshot) == stored.snapshot_sha256  # the hash covers what is stored
    import hashlib

    assert hashlib.sha256(canonical_json(stored.snapshot)).hexdigest() == stored.snapshot_sha256
    assert stored.snapshot["signoff"]["signer"] == "olga"
    assert stored.snapshot["report"]["status"] == "finalized"
    assert sub(stored.snapshot, "GOVERN 1.1")["attestation"]["text"] == "Reviewed."
    assert job.kind == "report_pdf" and job.queue == "default" and job.params["sha256"] == stored.snapshot_sha256
    finalize = AuditEvent.objects.get(action="report.finalize")
    assert finalize.after["sha256"] == stored.snapshot_sha256 and finalize.after["signer"] == "olga"
    assert audit_verify_chain()[1] is None


def test_a_finalized_report_never_changes(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report, _ = report_finalize(report=report, actor=officer)
    frozen = Report.objects.get(pk=report.pk).snapshot
    attempts = [
        lambda: report_update(report=report, actor=officer, title="changed"),
        lambda: report_subcategory_update(report=report, actor=officer, sub_id="GOVERN 1.1", attestation="late"),
        lambda: report_refresh_evidence(report=report, actor=officer),
        lambda: report_submit(report=report, actor=officer),
        lambda: report_finalize(report=report, actor=officer),
    ]
    for attempt in attempts:
        with pytest.raises(ReportError, match="never changes") as caught:
            attempt()
        assert caught.value.status == 409 and caught.value.code == "finalized"
    assert Report.objects.get(pk=report.pk).snapshot == frozen
    assert Job.objects.filter(kind="report_pdf").count() == 1


def test_a_revision_is_a_new_draft_from_the_finalized_report(officer, evidenced):
    report = report_create(
        actor=officer,
        model=evidenced.model,
        versions=["1.1.0"],
        start="2020-01-01",
        end="2030-12-31",
        title="Q1 credit-risk",
    )
    report_subcategory_update(report=report, actor=officer, sub_id="GOVERN 1.1", attestation="Reviewed.")
    with pytest.raises(ReportError, match="Only a finalized report is revised"):
        report_revise(report=report, actor=officer)
    report, _ = report_finalize(report=report, actor=officer)
    draft = report_revise(report=report, actor=officer)
    assert draft.pk != report.pk and draft.status == ReportStatus.DRAFT
    assert draft.revision == 2 and draft.revision_of_id == report.pk
    assert [v.version for v in draft.versions.all()] == ["1.1.0"] and draft.title == "Q1 credit-risk"
    assert sub(report_content(draft), "GOVERN 1.1")["attestation"]["text"] == "Reviewed."
    create = AuditEvent.objects.filter(action="report.create").latest("seq")
    assert create.after["revision_of"] == str(report.pk)
    assert Report.objects.get(pk=report.pk).status == ReportStatus.FINALIZED  # the original stays


def test_ten_thousand_events_are_summarised_not_copied(officer, evidenced):
    append_audit_events(
        10_000,
        obj_type="models_registry.registeredmodel",
        obj_id=str(evidenced.model.pk),
        obj_repr="credit-risk",
        actors=("erin", "ci-bot", "mo"),
    )
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    trail = report_content(report)["appendix"]["audit_trail"]
    assert trail["total"] > 10_000
    assert sum(trail["by_action"].values()) == trail["total"]
    assert len(trail["extract"]) == 50 and trail["extract_complete"] is False
    assert trail["extract"][0]["seq"] < trail["extract"][-1]["seq"]
    chain = report_content(report)["appendix"]["audit_chain"]
    assert chain["intact"] is True and chain["checked"] > 10_000
