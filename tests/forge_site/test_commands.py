"""Management commands: forge_user, forge_token, audit_verify."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from forge_site.models import ApiToken, AuditEvent
from forge_site.roles import user_roles
from forge_site.tokens import token_authenticate

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _roles(username: str) -> set[str]:
    return set(user_roles(User.objects.get(username=username)))


def test_forge_user_creates_a_user_in_the_role_with_the_given_password() -> None:
    out, _ = run("forge_user", "erin", "--role", "engineer", "--password", "a-long-passphrase", "--email", "e@x.io")
    assert out.strip() == "created: erin (engineer)"
    assert _roles("erin") == {"engineer"}
    assert authenticate(username="erin", password="a-long-passphrase") is not None
    assert User.objects.get(username="erin").email == "e@x.io"
    event = AuditEvent.objects.get(action="user.create")
    assert event.before is None
    assert event.after["roles"] == ["engineer"] and event.after["password_changed"] is True
    assert event.actor_label.startswith("cli")
    assert "a-long-passphrase" not in str(event.after)


def test_forge_user_generates_and_prints_a_password_when_none_is_given() -> None:
    out, _ = run("forge_user", "olga", "--role", "officer")
    lines = out.strip().splitlines()
    assert lines[0] == "created: olga (officer)"
    assert lines[1].startswith("password: ")
    password = lines[1].removeprefix("password: ")
    assert len(password) >= 16
    assert authenticate(username="olga", password=password) is not None


def test_forge_user_moves_a_user_to_exactly_one_role() -> None:
    run("forge_user", "mo", "--role", "engineer", "--password", "a-long-passphrase")
    out, _ = run("forge_user", "mo", "--role", "manager")
    assert out.strip() == "updated: mo (manager)"  # no new password printed on update
    assert _roles("mo") == {"manager"}
    assert authenticate(username="mo", password="a-long-passphrase") is not None  # password kept
    event = AuditEvent.objects.get(action="user.update")
    assert event.before["roles"] == ["engineer"] and event.after["roles"] == ["manager"]
    assert event.after["password_changed"] is False


def test_forge_user_changes_nothing_and_records_nothing_when_nothing_changes() -> None:
    run("forge_user", "mo", "--role", "manager", "--password", "a-long-passphrase")
    before = AuditEvent.objects.count()
    out, _ = run("forge_user", "mo", "--role", "manager")
    assert out.strip() == "unchanged: mo (manager)"
    assert AuditEvent.objects.count() == before


def test_forge_user_refuses_a_weak_password_and_creates_nothing() -> None:
    with pytest.raises(CommandError, match="The password was refused: This password is too short"):
        run("forge_user", "erin", "--role", "engineer", "--password", "short")
    assert not User.objects.filter(username="erin").exists()
    assert not AuditEvent.objects.exists()


def test_forge_user_refuses_an_unknown_role() -> None:
    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        run("forge_user", "erin", "--role", "admin")
    assert not User.objects.exists()


def test_forge_token_prints_only_a_working_token_on_stdout(engineer) -> None:
    out, err = run("forge_token", "erin", "--days", "30", "--name", "ci")
    plain = out.strip()
    assert "\n" not in plain
    token = token_authenticate(plain)
    assert token.user == engineer and token.name == "ci"
    assert "erin" in err and "expires" in err
    assert AuditEvent.objects.filter(action="token.create", object_id=str(token.pk)).exists()


def test_forge_token_with_zero_days_never_expires(engineer) -> None:
    run("forge_token", "erin", "--days", "0")
    assert ApiToken.objects.get().expires_at is None


def test_forge_token_refuses_an_unknown_user() -> None:
    with pytest.raises(CommandError, match=r"No user named 'nobody'; create one with forge_user first\."):
        run("forge_token", "nobody")
    assert not ApiToken.objects.exists()


def test_forge_token_refuses_negative_days(engineer) -> None:
    with pytest.raises(CommandError, match="--days must be 0"):
        run("forge_token", "erin", "--days", "-1")
    assert not ApiToken.objects.exists()


def test_audit_verify_counts_the_events_of_a_real_session(engineer) -> None:
    run("forge_user", "mo", "--role", "manager", "--password", "a-long-passphrase")
    run("forge_token", "erin")
    out, _ = run("audit_verify")
    assert out.strip() == "OK: 2 events verified"
