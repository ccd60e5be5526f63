"""Reads of reports: who may see which (engineers only reports on models they own), and a report's content."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from forge_site.roles import Role, user_roles
from governance.models import Report, ReportStatus
from governance.nist_rmf.catalog import FUNCTION_IDS
from governance.reports.snapshot import build_content


def reports_visible_to(user: Any) -> QuerySet[Report]:
    """Officers and managers see every report; an engineer sees reports on the models they own; anyone else none."""
    reports = Report.objects.select_related("model", "created_by", "finalized_by", "render_job").order_by(
        "-created_at", "-pk"
    )
    roles = user_roles(user)
    if roles & {Role.OFFICER, Role.MANAGER}:
        return reports
    if Role.ENGINEER in roles:
        return reports.filter(Q(model__owner=user))
    return reports.none()


def report_get(*, user: Any, report_id: Any) -> Report | None:
    return reports_visible_to(user).filter(pk=report_id).first()


def report_content(report: Report) -> dict[str, Any]:
    """What the report says now: a finalized report's frozen snapshot, else built from its draft evidence."""
    if report.status == ReportStatus.FINALIZED and report.snapshot:
        return report.snapshot
    entries = {entry.sub_id: entry for entry in report.entries.select_related("attested_by")}
    return build_content(report=report, entries=entries, evidence=report.evidence)


def report_list_rows(reports: Iterable[Report]) -> list[dict[str, Any]]:
    """Rows for the list: coverage per function from the snapshot (finalized) or computed from the draft."""
    rows = []
    for report in reports:
        content = report_content(report)
        functions = content["coverage"]["functions"]
        rows.append(
            {
                "report": report,
                # in the framework's order (a snapshot read back from jsonb has its keys sorted)
                "coverage": [{"id": f, **functions[f]} for f in FUNCTION_IDS],
                "title": content["report"]["title"],
                "period": content["report"]["period"]["label"],
            }
        )
    return rows
