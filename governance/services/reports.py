"""Reports: create a draft, let officers attest and write, submit for review, finalize into a hashed snapshot whose
PDF a job renders, and revise a finalized report into a new draft. Every step is on the audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from forge_site.audit import audit_record
from forge_site.jobs import JobKeyReused, job_create
from forge_site.models import Job, JobStatus
from governance.models import Report, ReportPdf, ReportStatus, ReportSubcategory
from governance.models.reports import EDITABLE_REPORT_STATUSES
from governance.nist_rmf.catalog import catalog, normalize_sub_id
from governance.reports.collectors import collect_all
from governance.reports.scope import ReportScope
from governance.reports.snapshot import build_content, evidence_to_json, snapshot_sha256
from models_registry.models import ModelVersion, RegisteredModel

REPORT_PDF_TASK = "governance.render_report_pdf"
REPORT_PDF_KIND = "report_pdf"
PAPERS = ("a4", "letter")
MAX_TEXT = 20_000
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100

Actor = AbstractBaseUser | AnonymousUser | None


class ReportError(Exception):
    """A refusal a person can act on: the message says what and why; `status` is the HTTP status to answer."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.code, self.status = message, field, code, status


# --- input ---------------------------------------------------------------------------------------------------------


def _instant(value: Any, field: str, *, end: bool) -> datetime:
    """A date (YYYY-MM-DD, the whole day: its start, or for the end its last microsecond) or a datetime (naive: UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.max if end else time.min)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            day = parse_date(text)
            parsed = parse_datetime(text) if day is None else None
        except ValueError:
            day, parsed = None, None
        if day is not None:
            moment = datetime.combine(day, time.max if end else time.min)
        elif parsed is not None:
            moment = parsed
        else:
            raise ReportError(
                f"{field} must be a date (YYYY-MM-DD) or a date and time (ISO 8601), got {text[:40]!r}.", field=field
            )
    else:
        raise ReportError(f"{field} is required: a date (YYYY-MM-DD) or a date and time (ISO 8601).", field=field)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ReportError(f"{field} must lie between {EARLIEST_YEAR} and {LATEST_YEAR}.", field=field)
    return moment


def parse_period(start: Any, end: Any) -> tuple[datetime, datetime]:
    """The period as instants, both inclusive: dates cover their whole day."""
    first = _instant(start, "period.start", end=False)
    last = _instant(end, "period.end", end=True)
    if first > last:
        raise ReportError(
            "The period ends before it starts: period.end must not precede period.start.", field="period.end"
        )
    return first, last


def _versions(model: RegisteredModel | None, versions: Iterable[Any]) -> list[ModelVersion]:
    names = [str(v).strip() for v in versions or () if str(v).strip()]
    if not names:
        return []
    if model is None:
        raise ReportError(
            "A whole-inventory report covers every version: leave versions out, or name a model.", field="versions"
        )
    found = {v.version: v for v in ModelVersion.objects.filter(model=model, version__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise ReportError(f"{model.name} has no version {missing[0]!r}.", field="versions", code="not_found")
    return [found[name] for name in dict.fromkeys(names)]


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ReportError(f"{field} must be text.", field=field)
    if len(value) > MAX_TEXT:
        raise ReportError(f"{field} is {len(value):,} characters; the limit is {MAX_TEXT:,}.", field=field)
    return value


def _locked(report: Report, *, editable: bool = True) -> Report:
    """The report's row, locked for this transaction; a finalized one is refused with 409 when editing."""
    locked = Report.objects.select_for_update(of=("self",)).select_related("model").get(pk=report.pk)
    if editable and not locked.is_editable:
        raise _finalized(locked)
    return locked


def _finalized(report: Report) -> ReportError:
    when = timezone.localtime(report.finalized_at, UTC).strftime("%Y-%m-%d %H:%M UTC") if report.finalized_at else ""
    return ReportError(
        f"This report was finalized by {report.signer or 'someone'} at {when} and never changes; "
        "start a revision to change it.",
        code="finalized",
        status=409,
    )


def report_scope(report: Report) -> ReportScope:
    return ReportScope(
        model=report.model,
        chosen_versions=tuple(report.versions.select_related("model")),
        start=report.period_start,
        end=report.period_end,
    )


def _collect(report: Report) -> tuple[dict[str, Any], datetime]:
    now = timezone.now()
    return evidence_to_json(collect_all(report_scope(report)), now), now


# --- drafts --------------------------------------------------------------------------------------------------------


@transaction.atomic
def report_create(
    *,
    actor: Actor,
    model: RegisteredModel | None,
    start: Any,
    end: Any,
    versions: Iterable[Any] = (),
    title: str = "",
) -> Report:
    """Start a draft for a model (all versions, or those named) or the whole inventory, and collect its evidence."""
    first, last = parse_period(start, end)
    chosen = _versions(model, versions)
    report = Report.objects.create(
        model=model, period_start=first, period_end=last, title=_text(title, "title")[:200], created_by=_user(actor)
    )
    report.versions.set(chosen)
    report.evidence, report.evidence_collected_at = _collect(report)
    report.save(update_fields=["evidence", "evidence_collected_at"])
    audit_record(
        actor=actor,
        action="report.create",
        obj=report,
        after={
            "model": model.name if model else None,
            "versions": [v.version for v in chosen] or "all",
            "period": {"start": first.isoformat(), "end": last.isoformat()},
            "revision_of": None,
        },
    )
    return report


def _user(actor: Actor) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


@transaction.atomic
def report_update(
    *, report: Report, actor: Actor, title: str | None = None, executive_summary: str | None = None
) -> Report:
    """Edit the title or the executive summary of a report that is not finalized."""
    report = _locked(report)
    before, after = {}, {}
    if title is not None and _text(title, "title")[:200] != report.title:
        before["title"], after["title"] = report.title, title[:200]
        report.title = title[:200]
    if executive_summary is not None and _text(executive_summary, "executive_summary") != report.executive_summary:
        before["executive_summary"], after["executive_summary"] = report.executive_summary, executive_summary
        report.executive_summary = executive_summary
    if after:
        report.save(update_fields=["title", "executive_summary", "updated_at"])
        audit_record(actor=actor, action="report.update", obj=report, before=before, after=after)
    return report


@transaction.atomic
def report_subcategory_update(
    *,
    report: Report,
    actor: Actor,
    sub_id: str,
    attestation: str | None = None,
    narrative: str | None = None,
    not_applicable: bool | None = None,
    justification: str | None = None,
) -> ReportSubcategory:
    """Write what a person says about one subcategory; not applicable needs a justification."""
    try:
        sub = catalog().subcategory(normalize_sub_id(sub_id))
    except (KeyError, ValueError) as exc:
        raise ReportError(
            f"{sub_id[:40]!r} is not a NIST AI RMF 1.0 subcategory.", code="not_found", status=404
        ) from exc
    report = _locked(report)
    entry, _ = ReportSubcategory.objects.get_or_create(report=report, sub_id=sub.id)
    fields = ("attestation", "narrative", "not_applicable", "justification")
    before = {name: getattr(entry, name) for name in fields}
    now = timezone.now()
    if attestation is not None and _text(attestation, "attestation") != entry.attestation:
        entry.attestation = attestation
        entry.attested_by, entry.attested_at = (_user(actor), now) if attestation.strip() else (None, None)
    if narrative is not None:
        entry.narrative = _text(narrative, "narrative")
    if justification is not None:
        entry.justification = _text(justification, "justification")
    if not_applicable is not None:
        if not isinstance(not_applicable, bool):
            raise ReportError("not_applicable must be true or false.", field="not_applicable")
        entry.not_applicable = not_applicable
    if entry.not_applicable and not entry.justification.strip():
        raise ReportError(
            f"Say why {sub.id} does not apply: not applicable needs a justification.", field="justification"
        )
    after = {name: getattr(entry, name) for name in fields}
    changed = [name for name in fields if before[name] != after[name]]
    if changed:
        entry.updated_by = _user(actor)
        entry.save()
        Report.objects.filter(pk=report.pk).update(updated_at=now)
        audit_record(
            actor=actor,
            action="report.update",
            obj=report,
            before={"subcategory": sub.id, **{name: before[name] for name in changed}},
            after={"subcategory": sub.id, **{name: after[name] for name in changed}},
        )
    return entry


@transaction.atomic
def report_refresh_evidence(*, report: Report, actor: Actor) -> Report:
    """Collect the evidence again (new runs, new events); what people wrote stays."""
    report = _locked(report)
    report.evidence, report.evidence_collected_at = _collect(report)
    report.save(update_fields=["evidence", "evidence_collected_at", "updated_at"])
    audit_record(
        actor=actor,
        action="report.update",
        obj=report,
        after={"evidence_collected_at": report.evidence_collected_at.isoformat()},
    )
    return report


@transaction.atomic
def report_submit(*, report: Report, actor: Actor) -> Report:
    """Draft -> in review: the draft is complete enough for a second officer to read."""
    report = _locked(report)
    if report.status != ReportStatus.DRAFT:
        raise ReportError(
            "Only a draft can be submitted for review; this report is already in review.", code="not_draft", status=409
        )
    report.status, report.submitted_by, report.submitted_at = ReportStatus.IN_REVIEW, _user(actor), timezone.now()
    report.save(update_fields=["status", "submitted_by", "submitted_at", "updated_at"])
    audit_record(
        actor=actor, action="report.submit", obj=report, before={"status": "draft"}, after={"status": report.status}
    )
    return report


# --- finalizing ----------------------------------------------------------------------------------------------------


def _replayed_finalize(report: Report, actor: Actor, key: str) -> Job | None:
    user = _user(actor)
    if not key or user is None:
        return None
    job = Job.objects.filter(
        created_by=user, idempotency_key=key, kind=REPORT_PDF_KIND, subject_id=str(report.pk)
    ).first()
    if job is not None:
        job.replayed = True
    return job


def report_finalize(*, report: Report, actor: Actor, idempotency_key: str = "") -> tuple[Report, Job]:
    """Freeze the report: collect the evidence one last time, copy every value into the snapshot with the signer and
    the time, hash it, and queue the PDF job. From draft or in review; one officer wins a race, the other gets 409.
    The same Idempotency-Key again from the same officer returns the first call's job."""
    try:
        with transaction.atomic():
            report = _locked(report, editable=False)
            if report.status == ReportStatus.FINALIZED:
                replay = _replayed_finalize(report, actor, idempotency_key)
                if replay is not None:
                    return report, replay
                raise _finalized(report)
            now = timezone.now()
            evidence, _ = _collect(report)
            user = _user(actor)
            report.status, report.finalized_by, report.finalized_at = ReportStatus.FINALIZED, user, now
            report.signer = user.get_username() if user is not None else "system"
            report.evidence, report.evidence_collected_at = evidence, now
            entries = {entry.sub_id: entry for entry in report.entries.select_related("attested_by")}
            snapshot = build_content(report=report, entries=entries, evidence=evidence)
            snapshot["signoff"] = {
                "signer": report.signer,
                "signer_name": (user.get_full_name() if user is not None else "") or report.signer,
                "finalized_at": snapshot_time(now),
                "statement": (
                    f"Finalized by {report.signer}. This snapshot is the report: every evidence value in it was "
                    "copied from Forge's records when it was finalized, and its SHA-256 covers all of it."
                ),
            }
            report.snapshot = snapshot
            report.snapshot_sha256 = snapshot_sha256(snapshot)
            claimed = Report.objects.filter(pk=report.pk, status__in=EDITABLE_REPORT_STATUSES).update(
                status=report.status,
                finalized_by=user,
                finalized_at=now,
                signer=report.signer,
                snapshot=report.snapshot,
                snapshot_sha256=report.snapshot_sha256,
                evidence=evidence,
                evidence_collected_at=now,
                updated_at=now,
            )
            if claimed != 1:  # cannot happen under the row lock; kept for databases without one
                raise _finalized(Report.objects.get(pk=report.pk))
            audit_record(
                actor=actor,
                action="report.finalize",
                obj=report,
                before={"status": "in_review" if report.submitted_at else "draft"},
                after={
                    "status": "finalized",
                    "sha256": report.snapshot_sha256,
                    "signer": report.signer,
                    "coverage": snapshot["coverage"]["overall"]["counts"],
                },
            )
            job = _queue_render(report, actor, idempotency_key)
            Report.objects.filter(pk=report.pk).update(render_job=job)
            report.render_job = job
    except JobKeyReused as exc:
        raise ReportError(str(exc), code="idempotency_key_reused", status=409) from exc
    return report, job


def snapshot_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _queue_render(report: Report, actor: Actor, key: str) -> Job:
    return job_create(
        kind=REPORT_PDF_KIND,
        task_name=REPORT_PDF_TASK,
        queue="default",
        subject=report,
        subject_label=f"report {str(report.pk)[:8]} ({report.scope_label})",
        params={"sha256": report.snapshot_sha256, "papers": list(PAPERS)},
        created_by=actor,
        idempotency_key=key,
    )


def report_render_start(*, report: Report, actor: Actor, idempotency_key: str = "") -> Job:
    """Render the PDFs again: after a failed render job, or when a paper size is missing."""
    try:
        with transaction.atomic():
            report = _locked(report, editable=False)
            if report.status != ReportStatus.FINALIZED:
                raise ReportError(
                    "Only a finalized report has a PDF; finalize it first.", code="not_finalized", status=409
                )
            replay = _replayed_finalize(report, actor, idempotency_key)
            if replay is not None:
                return replay
            current = report.render_job
            if current is not None and current.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                raise ReportError("The PDF is being rendered now; follow its job.", code="rendering", status=409)
            if set(report.pdfs.values_list("paper", flat=True)) >= set(PAPERS):
                raise ReportError("Both PDFs are rendered already; download them.", code="rendered", status=409)
            job = _queue_render(report, actor, idempotency_key)
            Report.objects.filter(pk=report.pk).update(render_job=job)
    except JobKeyReused as exc:
        raise ReportError(str(exc), code="idempotency_key_reused", status=409) from exc
    return job


@transaction.atomic
def report_record_pdf(
    *, report: Report, job: Job | None, paper: str, storage_name: str, sha256: str, size: int, pages: int
) -> ReportPdf:
    """Note a rendered PDF (stored under its SHA-256) and audit it."""
    pdf, _ = ReportPdf.objects.update_or_create(
        report=report,
        paper=paper,
        defaults={
            "storage_name": storage_name,
            "sha256": sha256,
            "size": size,
            "pages": pages,
            "job": job,
            "rendered_at": timezone.now(),
        },
    )
    audit_record(
        actor=None,
        action="report.render",
        obj=report,
        after={
            "paper": paper,
            "sha256": sha256,
            "size": size,
            "pages": pages,
            "snapshot_sha256": report.snapshot_sha256,
        },
    )
    return pdf


# --- revisions -----------------------------------------------------------------------------------------------------


@transaction.atomic
def report_revise(*, report: Report, actor: Actor) -> Report:
    """A new draft from a finalized report: the same scope, summary and what people wrote; fresh evidence."""
    source = Report.objects.select_related("model").get(pk=report.pk)
    if source.status != ReportStatus.FINALIZED:
        raise ReportError(
            "Only a finalized report is revised; edit this one directly.", code="not_finalized", status=409
        )
    draft = Report.objects.create(
        model=source.model,
        period_start=source.period_start,
        period_end=source.period_end,
        title=source.title,
        executive_summary=source.executive_summary,
        created_by=_user(actor),
        revision_of=source,
        revision=source.revision + 1,
    )
    draft.versions.set(source.versions.all())
    ReportSubcategory.objects.bulk_create(
        ReportSubcategory(
            report=draft,
            sub_id=entry.sub_id,
            attestation=entry.attestation,
            attested_by=entry.attested_by,
            attested_at=entry.attested_at,
            narrative=entry.narrative,
            not_applicable=entry.not_applicable,
            justification=entry.justification,
            updated_by=_user(actor),
        )
        for entry in source.entries.all()
    )
    draft.evidence, draft.evidence_collected_at = _collect(draft)
    draft.save(update_fields=["evidence", "evidence_collected_at"])
    audit_record(
        actor=actor,
        action="report.create",
        obj=draft,
        after={
            "model": source.model.name if source.model else None,
            "versions": [v.version for v in draft.versions.all()] or "all",
            "period": {"start": source.period_start.isoformat(), "end": source.period_end.isoformat()},
            "revision_of": str(source.pk),
            "revision": draft.revision,
        },
    )
    return draft
