"""Reads of the shared kernel: the audit trail and background jobs, shaped for pages and exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from forge_site.models import TERMINAL_JOB_STATUSES, AuditEvent, Job, JobStatus

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page and its exports filter on; empty values mean 'any'."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    request_id: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor or None,
            "action": self.action or None,
            "object_type": self.object_type or None,
            "object_id": self.object_id or None,
            "request_id": self.request_id or None,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def audit_event_list(*, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Events matching the filters, newest first. `action` ending in `*` matches a prefix (`version.*`)."""
    qs = AuditEvent.objects.all()
    if filters.actor:
        qs = qs.filter(actor_label=filters.actor)
    if filters.action:
        if filters.action.endswith("*"):
            qs = qs.filter(action__startswith=filters.action[:-1])
        else:
            qs = qs.filter(action=filters.action)
    if filters.object_type:
        qs = qs.filter(object_type=filters.object_type)
    if filters.object_id:
        qs = qs.filter(object_id=filters.object_id)
    if filters.request_id:
        qs = qs.filter(request_id=filters.request_id)
    if filters.start:
        qs = qs.filter(at__gte=filters.start)
    if filters.end:
        qs = qs.filter(at__lt=filters.end)
    return qs.order_by("-seq")


def audit_recent(*, limit: int = 8) -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("-seq")[:limit])


def job_list(*, status: str = "", kind: str = "") -> QuerySet[Job]:
    qs = Job.objects.select_related("created_by")
    if status == "active":
        qs = qs.filter(status__in=ACTIVE_JOB_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-pk")


def job_kinds() -> list[str]:
    return list(Job.objects.order_by("kind").values_list("kind", flat=True).distinct())


def job_get(*, job_id: Any) -> Job:
    return Job.objects.select_related("created_by").get(pk=job_id)


def job_status_counts() -> dict[str, int]:
    """Jobs per status, every status present (zero when none)."""
    counts = {status: 0 for status in JobStatus.values}
    for row in Job.objects.values("status").annotate(n=Count("pk")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def jobs_all_terminal(jobs: list[Job]) -> bool:
    return all(job.status in TERMINAL_JOB_STATUSES for job in jobs)
