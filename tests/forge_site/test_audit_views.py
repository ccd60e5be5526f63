"""The audit page and its exports: officers only, filters, streamed CSV / JSON Lines, the export audited."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import reverse

from forge_site.audit import audit_record
from forge_site.models import AuditEvent

pytestmark = pytest.mark.django_db


def _record(actor: User | None, action: str, object_type: str, object_id: str, **extra: object) -> AuditEvent:
    with transaction.atomic():
        return audit_record(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=f"obj {object_id}",
            **extra,
        )


@pytest.fixture
def events(engineer: User, manager: User) -> list[AuditEvent]:
    return [
        _record(engineer, "model.create", "models_registry.registeredmodel", "1", after={"name": "credit-risk"}),
        _record(engineer, "version.upload", "models_registry.modelversion", "7", after={"sha256": "ab" * 32}),
        _record(None, "version.ready", "models_registry.modelversion", "7", before={"status": "validating"}),
        _record(manager, "model.update", "models_registry.registeredmodel", "1", before={"a": 1}, after={"a": 2}),
    ]


@pytest.fixture
def officer_client(client: Client, officer: User) -> Client:
    client.force_login(officer)
    return client


def _seqs(response) -> list[int]:
    return [event.seq for event in response.context["events"]]


def test_only_officers_may_open_the_audit_page_and_exports(client: Client, engineer, manager, officer, events):
    urls = [reverse("audit:list"), reverse("audit:export_csv"), reverse("audit:export_jsonl")]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to login
    for user in (engineer, manager):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 403, (user, url)
    client.force_login(officer)
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert not AuditEvent.objects.filter(action="audit.export", actor_label__in=["erin", "mo"]).exists()


def test_the_page_lists_events_newest_first_with_their_changes(officer_client: Client, events):
    response = officer_client.get(reverse("audit:list"))
    seqs = _seqs(response)
    assert seqs == sorted(seqs, reverse=True)
    html = response.content.decode()
    assert "version.upload" in html and "obj 7" in html and "&quot;validating&quot;" in html
    assert reverse("audit:export_csv") in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "erin"}, [1, 0]),
        ({"actor": "system"}, [2]),
        ({"action": "model.update"}, [3]),
        ({"action": "version.*"}, [2, 1]),
        ({"object_type": "models_registry.modelversion"}, [2, 1]),
        ({"object_type": "models_registry.registeredmodel", "object_id": "1"}, [3, 0]),
        ({"actor": "erin", "action": "version.upload"}, [1]),
    ],
)
def test_the_filters_narrow_the_events(officer_client: Client, events, params, expected):
    response = officer_client.get(reverse("audit:list"), params)
    assert _seqs(response) == [events[i].seq for i in expected]


def test_the_time_filters_take_a_from_and_to(officer_client: Client, events):
    # The trail is append-only (a trigger refuses UPDATE), so the bounds fall between real events.
    response = officer_client.get(reverse("audit:list"), {"start": events[2].at.isoformat()})
    assert _seqs(response) == [events[3].seq, events[2].seq]
    response = officer_client.get(reverse("audit:list"), {"end": events[1].at.isoformat(), "actor": "erin"})
    assert _seqs(response) == [events[0].seq]
    minute = events[0].at.strftime("%Y-%m-%dT%H:%M")  # what a datetime-local input sends
    assert officer_client.get(reverse("audit:list"), {"start": minute}).context["form"].is_valid()


def test_a_bad_date_shows_an_error_and_no_events(officer_client: Client, events):
    response = officer_client.get(reverse("audit:list"), {"start": "yesterday-ish"})
    assert response.status_code == 200
    assert response.context["form"].errors["start"]
    assert _seqs(response) == []
    assert "Fix the filters" in response.content.decode()
    response = officer_client.get(reverse("audit:list"), {"start": "2026-02-01T00:00", "end": "2026-01-01T00:00"})
    assert "must be after" in response.content.decode()


def test_the_page_is_paginated(officer_client: Client, engineer):
    for i in range(55):
        _record(engineer, "tag.touch", "x.y", str(i))
    first = officer_client.get(reverse("audit:list"), {"action": "tag.touch"})
    assert len(first.context["events"]) == 50
    second = officer_client.get(reverse("audit:list"), {"action": "tag.touch", "page": 2})
    assert len(second.context["events"]) == 5


def _csv_rows(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _jsonl_rows(response) -> list[dict[str, object]]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def test_the_csv_export_streams_exactly_the_filtered_rows(officer_client: Client, events):
    response = officer_client.get(reverse("audit:export_csv"), {"object_type": "models_registry.modelversion"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="forge-audit-')
    rows = _csv_rows(response)
    assert [int(r["seq"]) for r in rows] == [events[2].seq, events[1].seq]
    assert rows[1]["actor"] == "erin" and rows[1]["action"] == "version.upload"
    assert json.loads(rows[1]["after"]) == {"sha256": "ab" * 32}
    assert rows[1]["hash"] == events[1].hash and rows[1]["prev_hash"] == events[1].prev_hash


def test_the_jsonl_export_streams_exactly_the_filtered_rows(officer_client: Client, events):
    response = officer_client.get(reverse("audit:export_jsonl"), {"actor": "erin"})
    assert response.status_code == 200 and response.streaming
    assert "ndjson" in response["Content-Type"]
    rows = _jsonl_rows(response)
    assert [r["seq"] for r in rows] == [events[1].seq, events[0].seq]
    assert rows[0]["after"] == {"sha256": "ab" * 32} and rows[0]["hash"] == events[1].hash
    assert set(rows[0]) >= {"seq", "at", "actor", "action", "object_type", "object_id", "before", "after", "hash"}


def test_each_export_is_itself_an_audit_event_and_not_in_its_own_file(officer_client: Client, officer, events):
    response = officer_client.get(reverse("audit:export_jsonl"))
    rows = _jsonl_rows(response)
    export = AuditEvent.objects.get(action="audit.export")
    assert export.actor_label == officer.username
    assert export.after["format"] == "jsonl" and export.after["rows"] == len(rows)
    assert export.seq not in [r["seq"] for r in rows]
    officer_client.get(reverse("audit:export_csv"), {"actor": "erin", "action": "version.*"})
    second = AuditEvent.objects.filter(action="audit.export").order_by("-seq").first()
    assert second.after["format"] == "csv" and second.after["rows"] == 1
    assert second.after["filters"]["actor"] == "erin" and second.after["filters"]["action"] == "version.*"


def test_an_export_with_bad_filters_exports_nothing(officer_client: Client, events):
    response = officer_client.get(reverse("audit:export_csv"), {"end": "not-a-date"})
    assert response.status_code == 400
    assert b"nothing was exported" in response.content
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_the_csv_export_defuses_spreadsheet_formulas(officer_client: Client):
    with transaction.atomic():
        audit_record(
            actor=None, actor_label='=HYPERLINK("http://x")', action="auth.login_failed", object_type="auth.user"
        )
    rows = _csv_rows(officer_client.get(reverse("audit:export_csv"), {"action": "auth.login_failed"}))
    assert rows[0]["actor"] == '\'=HYPERLINK("http://x")'
    jsonl = _jsonl_rows(officer_client.get(reverse("audit:export_jsonl"), {"action": "auth.login_failed"}))
    assert jsonl[0]["actor"] == '=HYPERLINK("http://x")'  # the exact value, for hash verification


def test_the_admin_shows_audit_events_but_refuses_every_change(client: Client, events):
    User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(User.objects.get(username="root"))
    event = events[0]
    assert client.get("/admin/forge_site/auditevent/").status_code == 200
    assert client.get(f"/admin/forge_site/auditevent/{event.pk}/change/").status_code == 200  # view only
    assert client.get("/admin/forge_site/auditevent/add/").status_code == 403
    assert client.post(f"/admin/forge_site/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert client.post(f"/admin/forge_site/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "model.create"


def test_the_admin_never_shows_or_edits_a_token_hash(client: Client, engineer):
    from forge_site.tokens import token_create

    token, _plain = token_create(user=engineer, name="ci")
    User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(User.objects.get(username="root"))
    page = client.get(f"/admin/forge_site/apitoken/{token.pk}/change/")
    assert page.status_code == 200
    assert token.key_hash not in page.content.decode()
    assert "key_hash" not in page.context["adminform"].form.fields
    assert client.get("/admin/forge_site/apitoken/add/").status_code == 403
