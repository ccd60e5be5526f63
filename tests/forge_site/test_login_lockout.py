"""Login lockout: repeated failures lock the username (or the address) out, correct password included, until the
lock expires; the lock is audited once and the form says what happened."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from forge_site import throttles
from forge_site.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOCKED = "Too many failed sign-ins for this account. It is locked; try again in 15 minutes."


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    moment = [1_800_000_000.0]
    monkeypatch.setattr(throttles, "now", lambda: moment[0])
    return moment


def sign_in(username: str, password: str, address: str = "10.1.1.1", url: str = LOGIN) -> Any:
    client = Client(REMOTE_ADDR=address)
    response = client.post(url, {"username": username, "password": password})
    response.signed_in = "_auth_user_id" in client.session
    return response


def form_errors(response: Any) -> list[str]:
    return list(response.context["form"].non_field_errors())


def test_five_failures_lock_the_account_and_the_form_says_so(engineer, clock) -> None:
    for attempt in range(4):
        response = sign_in("erin", "wrong")
        assert response.status_code == 200 and not response.signed_in
        assert "Please enter a correct username and password" in form_errors(response)[0], attempt
    fifth = sign_in("erin", "wrong")
    assert form_errors(fifth) == [LOCKED]
    assert LOCKED in fifth.content.decode()  # shown on the page, where the user looks
    (lock,) = AuditEvent.objects.filter(action="auth.login_locked")
    assert (lock.actor_label, lock.object_id) == ("erin", "erin")
    assert lock.after["scope"] == "account" and lock.after["failures"] == 5 and lock.after["ip"] == "10.1.1.1"
    assert lock.after["locked_until"] == "2027-01-15T08:15:00+00:00"


def test_a_locked_out_user_is_refused_with_the_right_password_until_the_lock_expires(engineer, clock) -> None:
    for _ in range(5):
        sign_in("erin", "wrong")
    failures = AuditEvent.objects.filter(action="auth.login_failed").count()
    refused = sign_in("erin", PASSWORD)
    assert not refused.signed_in and form_errors(refused) == [LOCKED]
    clock[0] += 14 * 60 + 59
    assert not sign_in("erin", PASSWORD, address="10.9.9.9").signed_in  # from anywhere
    # What the lock refused was logged, not audited: an attacker hammering a locked account cannot fill the trail.
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == failures
    assert AuditEvent.objects.filter(action="auth.login_locked").count() == 1
    clock[0] += 2  # 15 minutes and a second after the lock
    assert sign_in("erin", PASSWORD).signed_in
    assert AuditEvent.objects.filter(action="auth.login").count() == 1


def test_the_admin_login_is_locked_too(engineer, clock) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    for _ in range(5):
        sign_in("root", "wrong", url="/admin/login/")
    refused = sign_in("root", PASSWORD, url="/admin/login/")
    assert not refused.signed_in and LOCKED in refused.content.decode()


def test_a_username_in_another_case_counts_for_the_same_account(engineer, clock) -> None:
    for name in ["erin", "Erin", "ERIN", "erin ", "eRin"]:
        sign_in(name, "wrong")
    assert form_errors(sign_in("erin", PASSWORD)) == [LOCKED]


def test_an_unknown_username_locks_the_same_way_so_the_lock_reveals_no_account(clock) -> None:
    for _ in range(4):
        sign_in("nobody", "wrong")
    assert form_errors(sign_in("nobody", "wrong")) == [LOCKED]


def test_a_successful_sign_in_clears_the_accounts_failures(engineer, clock) -> None:
    for _ in range(4):
        sign_in("erin", "wrong")
    assert sign_in("erin", PASSWORD).signed_in
    for _ in range(4):
        sign_in("erin", "wrong")
    assert sign_in("erin", PASSWORD).signed_in
    assert not AuditEvent.objects.filter(action="auth.login_locked").exists()


def test_many_failures_from_one_address_lock_that_address(engineer, officer, settings, clock) -> None:
    settings.FORGE_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    for name in ["alice", "bob", "carol"]:  # a password spray: one try per account
        sign_in(name, "Winter2026!", address="203.0.113.9")
    refused = sign_in("olga", PASSWORD, address="203.0.113.9")
    assert not refused.signed_in
    assert form_errors(refused) == [
        "Too many failed sign-ins from your network address. Sign-in is locked; try again in 15 minutes."
    ]
    assert sign_in("olga", PASSWORD, address="203.0.113.10").signed_in  # another address is not affected
    (lock,) = AuditEvent.objects.filter(action="auth.login_locked")
    assert lock.after["scope"] == "address" and lock.after["ip"] == "203.0.113.9"


def test_sign_in_works_when_the_cache_is_down(engineer, settings) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {**settings.CACHES["throttle"], "LOCATION": "redis://127.0.0.1:9/1"},
    }
    for _ in range(6):
        sign_in("erin", "wrong")
    assert sign_in("erin", PASSWORD).signed_in  # no lock can be kept, and the console still lets people in
