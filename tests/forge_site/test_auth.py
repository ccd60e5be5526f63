"""Signed-in pages: the session's user and roles are read fresh on every request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forge_site.roles import ROLE_GROUPS, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_role_taken_away_applies_to_the_next_request(client, engineer) -> None:
    assert client.login(username=engineer.username, password=PASSWORD)
    assert client.get("/registry/create/").status_code == 200
    engineer.groups.remove(Group.objects.get(name=ROLE_GROUPS[Role.ENGINEER]))
    assert client.get("/registry/create/").status_code == 403
    engineer.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.MANAGER]))
    assert client.get("/registry/").status_code == 200  # managers may read the registry
    assert client.get("/registry/create/").status_code == 403  # but not register models


def test_a_deactivated_user_is_signed_out(client, engineer) -> None:
    assert client.login(username=engineer.username, password=PASSWORD)
    engineer.is_active = False
    engineer.save()
    response = client.get("/registry/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_user_and_their_roles_cost_one_query(client, engineer) -> None:
    engineer.groups.add(Group.objects.get_or_create(name="Some other team")[0])
    assert client.login(username=engineer.username, password=PASSWORD)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/registry/create/").status_code == 200
    user_queries = [q["sql"] for q in queries.captured_queries if '"auth_user"' in q["sql"]]
    assert len(user_queries) == 1, user_queries
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith('SELECT "auth_group"')]
