"""Two officers finalize the same report at the same moment: one signs it, the other is told it is finalized."""

from __future__ import annotations

import threading

import pytest
from rest_framework.test import APIClient

from forge_site.models import AuditEvent, Job
from forge_site.roles import Role
from governance.models import Report, ReportStatus
from governance.reports.snapshot import snapshot_sha256
from governance.services.reports import report_create
from tests.concurrency import at_once, postgres_only
from tests.conftest import make_user
from tests.governance.helpers import evidenced_model

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]


def test_two_officers_finalizing_at_once_one_wins(engineer, manager, officer):
    evidenced = evidenced_model(engineer=engineer, manager=manager)
    second = make_user("oscar", Role.OFFICER)
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    clients = []
    for user in (officer, second):
        client = APIClient()
        client.force_authenticate(user)
        clients.append(client)
    lock = threading.Lock()
    answers: list[tuple[str, int, dict]] = []

    def finalize() -> None:
        with lock:
            client = clients.pop()
        response = client.post(f"/api/v1/reports/{report.pk}/finalize/")
        with lock:
            answers.append((client.handler._force_user.username, response.status_code, response.json()))

    assert at_once(finalize, count=2) == []
    statuses = sorted(status for _, status, _ in answers)
    assert statuses == [202, 409], answers
    winner = next(name for name, status, _ in answers if status == 202)
    loser = next(body for _, status, body in answers if status == 409)
    assert loser["error"]["code"] == "finalized" and f"finalized by {winner}" in loser["error"]["message"]
    stored = Report.objects.get(pk=report.pk)
    assert stored.status == ReportStatus.FINALIZED and stored.signer == winner
    assert snapshot_sha256(stored.snapshot) == stored.snapshot_sha256
    assert Job.objects.filter(kind="report_pdf").count() == 1
    assert AuditEvent.objects.filter(action="report.finalize").count() == 1
