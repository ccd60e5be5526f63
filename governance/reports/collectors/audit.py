"""Evidence from the audit trail: the events about the scope in the period, the chain's integrity, approvals and
alias moves (with the alias history), and retirements. Governance reads rollout history from these events and
from AliasAssignment, never by importing rollouts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from forge_site.audit import audit_verify_chain
from forge_site.models import AuditEvent, AuditHead, Job
from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.base import evidence_item, iso
from governance.reports.scope import ReportScope
from models_registry.models import AliasAssignment, ModelVersion

MODEL_TYPE = "models_registry.registeredmodel"
VERSION_TYPE = "models_registry.modelversion"
JOB_TYPE = "forge_site.job"
REPORT_TYPE = "governance.report"
# Objects of other apps whose events name the model in their after-payload (`"model": name`), per INTERFACES.md.
NAMED_BY_MODEL = ("rollouts.rollout", "rollouts.promotionrequest")
EXTRACT_ALL_UP_TO = 200  # more events than this: the extract keeps the first and last EXTRACT_ENDS
EXTRACT_ENDS = 25
APPROVAL_ACTIONS = ("alias.move", "promotion.request", "promotion.approve", "promotion.reject")
RETIREMENT_ACTIONS = ("model.retire", "version.retire")


def scope_events(scope: ReportScope) -> QuerySet[AuditEvent]:
    """The audit events in the period about the scope: its model, versions, their jobs, reports on it, and other
    apps' objects that name it. The whole inventory: every event in the period."""
    events = AuditEvent.objects.filter(at__gte=scope.start, at__lte=scope.end)
    if scope.model is None:
        return events
    model = scope.model
    version_ids = [str(pk) for pk in ModelVersion.objects.filter(model=model).values_list("pk", flat=True)]
    job_ids = [
        str(pk)
        for pk in Job.objects.filter(subject_type=VERSION_TYPE, subject_id__in=version_ids).values_list("pk", flat=True)
    ]
    report_ids = [str(pk) for pk in model.reports.values_list("pk", flat=True)]
    return events.filter(
        Q(object_type=MODEL_TYPE, object_id=str(model.pk))
        | Q(object_type=VERSION_TYPE, object_id__in=version_ids)
        | Q(object_type=JOB_TYPE, object_id__in=job_ids)
        | Q(object_type=REPORT_TYPE, object_id__in=report_ids)
        | Q(object_type__in=NAMED_BY_MODEL, after__model=model.name)
    )


def event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "actor": event.actor_label,
        "action": event.action,
        "object": f"{event.object_type}:{event.object_id}",
        "object_repr": event.object_repr,
        "after": event.after,
        "hash": event.hash,
    }


def collect_audit_trail(scope: ReportScope) -> KindEvidence:
    """One item summarising the events: how many, of which actions, by whom, per day, and an extract."""
    events = scope_events(scope)
    total = events.count()
    if not total:
        return KindEvidence(Kind.AUDIT_TRAIL)
    by_action = dict(events.order_by().values_list("action").annotate(n=Count("pk")).order_by("-n", "action"))
    by_actor = dict(events.order_by().values_list("actor_label").annotate(n=Count("pk")).order_by("-n", "actor_label"))
    per_day = [
        {"day": str(day), "events": n}
        for day, n in events.order_by()
        .annotate(day=TruncDate("at"))
        .values_list("day")
        .annotate(n=Count("pk"))
        .order_by("day")
    ]
    ordered = events.order_by("seq")
    if total <= EXTRACT_ALL_UP_TO:
        extract = [event_row(e) for e in ordered]
    else:
        first = list(ordered[:EXTRACT_ENDS])
        last = list(events.order_by("-seq")[:EXTRACT_ENDS])[::-1]
        extract = [event_row(e) for e in first + last]
    seqs = events.order_by().values_list("seq", flat=True)
    first_seq, last_seq = min(seqs), max(seqs)
    top = ", ".join(f"{action} {n:,}" for action, n in list(by_action.items())[:4])
    return KindEvidence(
        Kind.AUDIT_TRAIL,
        (
            evidence_item(
                kind=Kind.AUDIT_TRAIL,
                key="audit:trail",
                title="Audit trail in the period",
                summary=f"{total:,} events (#{first_seq} to #{last_seq}) about the scope: {top}",
                ok=True,
                at=None,
                ref={"type": "audit", "id": "", "path": "/audit/"},
                values={
                    "total": total,
                    "first_seq": first_seq,
                    "last_seq": last_seq,
                    "by_action": by_action,
                    "by_actor": by_actor,
                    "per_day": per_day,
                    "extract": extract,
                    "extract_complete": total <= EXTRACT_ALL_UP_TO,
                },
            ),
        ),
    )


def collect_audit_chain(scope: ReportScope) -> KindEvidence:
    """Walk the whole chain (every event, not only the scope's: one altered event anywhere breaks trust in all)."""
    checked, broken = audit_verify_chain()
    head = AuditHead.objects.filter(pk=1).first()
    verified_at = timezone.now()
    if broken is None:
        summary = f"audit chain verified: {checked:,} events, every hash and link intact"
    else:
        summary = f"audit chain BROKEN at event #{broken.seq}: {broken.reason}"
    return KindEvidence(
        Kind.AUDIT_CHAIN,
        (
            evidence_item(
                kind=Kind.AUDIT_CHAIN,
                key="audit:chain",
                title="Audit-chain verification",
                summary=summary,
                ok=broken is None,
                at=verified_at,
                ref={"type": "audit", "id": "", "path": "/audit/"},
                values={
                    "checked": checked,
                    "intact": broken is None,
                    "break_seq": broken.seq if broken else None,
                    "break_reason": broken.reason if broken else None,
                    "head_seq": head.last_seq if head else 0,
                    "head_hash": head.last_hash if head else "",
                    "verified_at": verified_at,
                },
            ),
        ),
    )


def _percent(value: object) -> str:
    return f"{value:g}%" if isinstance(value, int | float) else "?"


def _approval_summary(event: AuditEvent) -> str:
    after, before = event.after or {}, event.before or {}
    if event.action == "alias.move":
        moved_from = before.get("version")
        model = event.object_repr.split("@")[0]
        text = f"{event.actor_label} moved {after.get('alias')} of {model} to {after.get('version')}"
        text += f" (from {moved_from})" if moved_from else ""
    elif event.action == "rollout.advance":  # cited here only when advanced over unmet minimums
        text = (
            f"{event.actor_label} advanced rollout #{after.get('rollout', event.object_id)} of "
            f"{after.get('model', '')} {after.get('challenger', '')} to {_percent(after.get('share'))} of traffic"
        )
        if after.get("unmet"):
            text += f" before its minimums were met ({'; '.join(map(str, after['unmet']))})"
    else:
        verb = {
            "promotion.request": "asked to promote",
            "promotion.approve": "approved promoting",
            "promotion.reject": "rejected promoting",
        }[event.action]
        text = f"{event.actor_label} {verb} {after.get('model', '')} {after.get('challenger', '')}".rstrip()
        if after.get("unmet"):
            text += f" with unmet evidence ({', '.join(map(str, after['unmet']))})"
    if after.get("override_reason"):
        text += f"; override: {after['override_reason']}"
    reason = after.get("reason") or after.get("comment")
    return text + (f"; reason: {reason}" if reason else "")


def collect_approvals(scope: ReportScope) -> KindEvidence:
    """Promotion requests and decisions, alias moves (who put which version into service, why), overrides, and the
    alias history over the period."""
    items = []
    events = scope_events(scope).filter(
        Q(action__in=APPROVAL_ACTIONS) | Q(action="rollout.advance", after__has_key="override_reason")
    )
    for event in events.order_by("seq"):
        items.append(
            evidence_item(
                kind=Kind.APPROVALS,
                key=f"audit:{event.seq}",
                title=f"{event.action} #{event.seq}",
                summary=_approval_summary(event),
                ok=True,
                at=event.at,
                model=(event.after or {}).get("model") or event.object_repr.split("@")[0],
                version=str((event.after or {}).get("version") or (event.after or {}).get("challenger") or ""),
                ref={"type": "audit", "id": str(event.seq), "path": f"/audit/?object_id={event.object_id}"},
                values=event_row(event),
            )
        )
    assignments = (
        AliasAssignment.objects.filter(model__in=scope.models, started_at__lte=scope.end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=scope.start))
        .select_related("model", "version", "assigned_by")
        .order_by("model__name", "alias", "started_at")
    )
    periods = [
        {
            "model": a.model.name,
            "alias": a.alias,
            "version": a.version.version,
            "from": iso(max(a.started_at, scope.start)),
            "to": iso(min(a.ended_at, scope.end) if a.ended_at else scope.end),
            "started_at": iso(a.started_at),
            "ended_at": iso(a.ended_at),
            "assigned_by": a.assigned_by.get_username() if a.assigned_by else "",
            "reason": a.reason,
        }
        for a in assignments
    ]
    if periods:
        held = "; ".join(
            f"{p['alias']} {p['model']} {p['version']} from {str(p['started_at'])[:10]}" for p in periods[:4]
        )
        items.append(
            evidence_item(
                kind=Kind.APPROVALS,
                key="alias-history",
                title="Alias history in the period",
                summary=f"{len(periods)} alias holding{'s' if len(periods) != 1 else ''}: {held}",
                ok=True,
                at=None,
                ref={"type": "aliases", "id": "", "path": ""},
                values={"periods": periods},
            )
        )
    return KindEvidence(Kind.APPROVALS, tuple(items))


def retirement_recorded() -> bool:
    """Whether this Forge records retirements (issue 11 adds them to the registry)."""
    return hasattr(ModelVersion, "retired_at")


def collect_retirement(scope: ReportScope) -> KindEvidence:
    items = []
    for event in scope_events(scope).filter(action__in=RETIREMENT_ACTIONS).order_by("seq"):
        reason = (event.after or {}).get("reason") or "no reason given"
        items.append(
            evidence_item(
                kind=Kind.RETIREMENT,
                key=f"audit:{event.seq}",
                title=f"{event.action} #{event.seq}",
                summary=f"{event.actor_label} retired {event.object_repr}: {reason}",
                ok=True,
                at=event.at,
                model=event.object_repr.split(":")[0],
                version=event.object_repr.split(":")[1] if ":" in event.object_repr else "",
                ref={"type": "audit", "id": str(event.seq), "path": f"/audit/?object_id={event.object_id}"},
                values=event_row(event),
            )
        )
    return KindEvidence(Kind.RETIREMENT, tuple(items))
