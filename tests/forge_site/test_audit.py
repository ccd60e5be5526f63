"""The audit trail: each event's hash covers its content, the chain is append-only and survives concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from forge_site.audit import GENESIS_HASH, audit_record, audit_verify_chain, event_hash, hashed_fields
from forge_site.models import AuditEvent, AuditHead
from tests.conftest import PASSWORD

TABLE = AuditEvent._meta.db_table
TRIGGER = "forge_audit_append_only"


def _record(n: int, start: int = 0) -> list[AuditEvent]:
    return [
        audit_record(
            actor=None,
            action="test.thing",
            object_type="tests.thing",
            object_id=str(i),
            object_repr=f"thing {i}",
            before={"n": i},
            after={"n": i + 1, "note": "é ünïcode", "nested": {"list": [1, 2.5, None]}},
        )
        for i in range(start, start + n)
    ]


def verify() -> tuple[int, str, str]:
    """Run `manage.py audit_verify`; return (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@contextmanager
def tamperable() -> Iterator[None]:
    """Let the test write to the audit table: PostgreSQL's trigger is switched off for the block."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while deferred foreign-key checks are pending in the test's transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.django_db
def test_each_event_links_to_the_one_before_it() -> None:
    first, second, third = _record(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    head = AuditHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (3, third.hash)


@pytest.mark.django_db
def test_the_hash_covers_every_field_of_the_event() -> None:
    (event,) = _record(1)
    stored = AuditEvent.objects.get(pk=event.pk)
    fields = hashed_fields(stored)
    assert event_hash(**fields) == stored.hash
    changes = {
        "seq": 99,
        "at": stored.at.replace(microsecond=(stored.at.microsecond + 1) % 1_000_000),
        "actor_label": "mallory",
        "action": "test.other",
        "object_type": "tests.other",
        "object_id": "42",
        "object_repr": "something else",
        "before": {"n": -1},
        "after": {**stored.after, "note": "changed"},
        "request_id": "forged",
        "prev_hash": "f" * 64,
    }
    assert set(changes) == set(fields)
    for name, value in changes.items():
        assert event_hash(**{**fields, name: value}) != stored.hash, f"{name} is not covered by the hash"


@pytest.mark.django_db
def test_audit_verify_passes_on_an_intact_chain() -> None:
    _record(5)
    code, out, err = verify()
    assert code == 0, err
    assert out.strip() == "OK: 5 events verified"


@pytest.mark.django_db
def test_audit_verify_passes_on_an_empty_trail() -> None:
    assert verify()[:2] == (0, "OK: 0 events verified\n")


@pytest.mark.django_db
@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').split(':')[0] not in {'postgres', 'postgresql'}")
@pytest.mark.parametrize(
    "sql",
    [f"UPDATE {TABLE} SET object_repr = 'tampered' WHERE seq = 1", f"DELETE FROM {TABLE} WHERE seq = 1"],
    ids=["update", "delete"],
)
def test_postgresql_refuses_to_change_or_delete_an_event(sql: str) -> None:
    _record(2)
    refused = r"forge_site_auditevent is append-only: (UPDATE|DELETE) is not allowed"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()
    assert list(AuditEvent.objects.order_by("seq").values_list("object_repr", flat=True)) == ["thing 0", "thing 1"]
    assert verify()[0] == 0


@pytest.mark.django_db
def test_audit_verify_names_an_altered_event_and_exits_1() -> None:
    _record(4)
    with tamperable(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET after = %s WHERE seq = 3", ['{"n": 1000}'])
    code, out, err = verify()
    assert code == 1
    assert out == ""
    assert "BROKEN at event #3: content does not match its hash (the event was altered)" in err


@pytest.mark.django_db
def test_audit_verify_finds_a_removed_event() -> None:
    _record(4)
    with tamperable(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 2")
    code, _out, err = verify()
    assert code == 1
    assert "BROKEN at event #3: expected event #2, found #3 (a gap)" in err


@pytest.mark.django_db
def test_audit_verify_finds_the_newest_event_removed() -> None:
    _record(3)
    with tamperable(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 3")
    code, _out, err = verify()
    assert code == 1
    assert "BROKEN at event #3: the head records 3 events but the chain ends at #2" in err


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("seq", "reason"),
    [(2, "prev_hash does not match"), (3, "differs from the one recorded in the head")],
    ids=["middle", "newest"],
)
def test_audit_verify_finds_a_rewritten_event_whose_hash_was_recomputed(seq: int, reason: str) -> None:
    """Rewriting an event and its hash breaks the next event's link (or, for the newest, the head)."""
    _record(3)
    event = AuditEvent.objects.get(seq=seq)
    forged = {**hashed_fields(event), "after": {"n": 0}}
    with tamperable(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET after = %s, hash = %s WHERE seq = %s", ['{"n": 0}', event_hash(**forged), seq]
        )
    _checked, broken = audit_verify_chain()
    assert broken is not None
    assert broken.seq == 3 and reason in broken.reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').split(':')[0] not in {'postgres', 'postgresql'}")
def test_concurrent_appends_from_many_connections_keep_one_unbroken_chain() -> None:
    threads_n, per_thread = 8, 15
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                audit_record(actor=None, action="test.concurrent", object_type="tests.t", object_id=f"{worker}-{i}")
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=append, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    total = threads_n * per_thread
    checked, broken = audit_verify_chain()
    assert broken is None, broken
    assert checked == total
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert [seq for seq, _, _ in rows] == list(range(1, total + 1))  # no gap
    assert len({prev for _, prev, _ in rows}) == total  # no fork: no two events share a predecessor
    assert len({oid for oid in AuditEvent.objects.values_list("object_id", flat=True)}) == total


@pytest.mark.django_db
def test_a_failed_login_is_audited_with_the_username_tried(client, engineer) -> None:
    response = client.post(reverse("login"), {"username": "erin", "password": "not-the-password"})
    assert response.status_code == 200  # the form again, with an error
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor is None and event.actor_label == "erin"
    assert event.after == {"ip": "127.0.0.1"}
    assert event.request_id  # ties the event to the request's X-Request-ID
    assert not AuditEvent.objects.filter(action="auth.login").exists()


@pytest.mark.django_db
def test_a_successful_login_is_audited(client, engineer) -> None:
    response = client.post(reverse("login"), {"username": "erin", "password": PASSWORD})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == engineer and event.actor_label == "erin"
    assert event.object_type == "auth.user" and event.object_id == str(engineer.pk)
    assert event.request_id == response["X-Request-ID"]
    assert verify()[0] == 0
