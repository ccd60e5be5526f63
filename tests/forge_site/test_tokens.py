"""API tokens: stored hashed, audited on creation, refused when expired, revoked, forged or malformed."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from forge_site.models import ApiToken, AuditEvent
from forge_site.tokens import token_create, token_revoke

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/"


def _get(token: str) -> tuple[int, dict]:
    response = APIClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, response.json()


def test_a_token_is_stored_only_as_a_hash(engineer) -> None:
    token, plain = token_create(user=engineer, name="ci")
    assert plain.startswith(f"forge_{token.prefix}_")
    row = ApiToken.objects.get(pk=token.pk)
    assert row.key_hash == hashlib.sha256(plain.encode()).hexdigest()
    secret = plain.split("_", 2)[2]
    assert all(secret not in str(value) for value in ApiToken.objects.filter(pk=token.pk).values().first().values())


def test_creating_a_token_is_audited_without_the_secret(engineer) -> None:
    token, plain = token_create(user=engineer, name="ci", days=7)
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == engineer and event.object_id == str(token.pk)
    assert event.after["user"] == "erin" and event.after["name"] == "ci" and event.after["expires_at"]
    dumped = json.dumps([event.before, event.after, event.object_repr])
    assert plain not in dumped and token.key_hash not in dumped


def test_a_valid_token_authenticates_and_records_its_use(engineer) -> None:
    token, plain = token_create(user=engineer)
    status, body = _get(plain)
    assert status == 200, body
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_it_refuses_an_expired_token(engineer) -> None:
    token, plain = token_create(user=engineer, days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    status, body = _get(plain)
    assert status == 401
    assert body["error"]["message"] == "This token has expired; create a new one with forge_token."


def test_it_refuses_a_revoked_token_and_audits_the_revocation(engineer, officer) -> None:
    token, plain = token_create(user=engineer)
    token_revoke(token=token, actor=engineer)
    token_revoke(token=token, actor=engineer)  # revoking twice records it once
    status, body = _get(plain)
    assert status == 401
    assert body["error"]["message"] == "This token was revoked."
    assert AuditEvent.objects.filter(action="token.revoke", object_id=str(token.pk)).count() == 1


def test_it_refuses_a_token_whose_secret_was_guessed(engineer) -> None:
    token, _plain = token_create(user=engineer)
    status, body = _get(f"forge_{token.prefix}_{'x' * 43}")
    assert status == 401 and body["error"]["message"] == "Invalid token."


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer nonsense"])
def test_it_refuses_a_malformed_authorization_header(engineer, header: str) -> None:
    response = APIClient().get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="forge"'


def test_it_refuses_the_token_of_an_inactive_user(engineer) -> None:
    _token, plain = token_create(user=engineer)
    engineer.is_active = False
    engineer.save()
    status, body = _get(plain)
    assert status == 401 and body["error"]["message"] == "This user is inactive."


def test_a_token_with_zero_days_never_expires(engineer) -> None:
    token, _plain = token_create(user=engineer, days=0)
    assert token.expires_at is None


def test_a_token_carries_exactly_its_users_roles(engineer) -> None:
    from django.contrib.auth.models import Group, User

    from forge_site.roles import ROLE_GROUPS, Role

    nobody = User.objects.create_user("nobody", password="x-long-password-1")
    _, nobody_token = token_create(user=nobody)
    assert _get(nobody_token)[0] == 403  # signed in, but no role may list the registry

    _, token = token_create(user=engineer)
    upload = "/api/v1/models/"
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post(upload, {"name": "m1"}, format="json").status_code == 201  # engineer may register

    officer_too = User.objects.create_user("both", password="x-long-password-1")
    officer_too.groups.add(Group.objects.get_or_create(name=ROLE_GROUPS[Role.OFFICER])[0])
    officer_too.groups.add(Group.objects.get_or_create(name="Some other team")[0])
    _, both_token = token_create(user=officer_too)
    both = APIClient(HTTP_AUTHORIZATION=f"Bearer {both_token}")
    assert both.get(URL).status_code == 200  # officer may read
    assert both.post(upload, {"name": "m2"}, format="json").status_code == 403  # but not register
    officer_too.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.ENGINEER]))
    assert both.post(upload, {"name": "m2"}, format="json").status_code == 201  # a new role applies at once


def test_the_authenticated_user_is_the_whole_user(engineer) -> None:
    from forge_site.tokens import token_authenticate

    engineer.last_login = timezone.now() - timedelta(hours=3)
    engineer.email = "erin@example.com"
    engineer.save()
    token, plain = token_create(user=engineer, days=3)

    authenticated = token_authenticate(plain)

    assert authenticated.pk == token.pk and authenticated.expires_at == token.expires_at
    assert authenticated.user.pk == engineer.pk
    fields = [f.attname for f in type(engineer)._meta.concrete_fields]
    assert [getattr(authenticated.user, f) for f in fields] == [getattr(engineer, f) for f in fields]
    authenticated.user.first_name = "Erin"
    authenticated.user.save()  # a complete, aware instance saves without warnings or lost fields
    engineer.refresh_from_db()
    assert engineer.first_name == "Erin" and engineer.email == "erin@example.com"
