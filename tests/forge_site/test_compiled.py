"""forge_site.compiled.CompiledQuery: the ORM's SQL compiled once, run with new values, converted as the ORM would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.utils import timezone

from forge_site.compiled import CompiledQuery
from forge_site.models import ApiToken, Job

pytestmark = pytest.mark.django_db


def _users(username: str) -> QuerySet:
    return (
        User.objects.filter(username=username)
        .order_by("groups__name")
        .values_list("id", "username", "is_active", "date_joined", "last_login", "groups__name")
    )


def test_it_returns_what_values_list_returns_for_each_value() -> None:
    staff = Group.objects.create(name="staff")
    ops = Group.objects.create(name="ops")
    ada = User.objects.create_user("ada", last_login=timezone.now() - timedelta(days=2))
    ada.groups.set([staff, ops])
    User.objects.create_user("bob", is_active=False)
    query = CompiledQuery(_users)

    for username in ["ada", "bob", "ada", "nobody"]:
        assert query.rows(username) == list(_users(username))
    ada_rows = query.rows("ada")
    assert [row[-1] for row in ada_rows] == ["ops", "staff"]
    assert ada_rows[0][3].tzinfo is not None and ada_rows[0][4] == ada.last_login  # aware, as the ORM gives them
    assert query.rows("bob")[0][2] is False


def test_json_columns_come_back_decoded() -> None:
    job = Job.objects.create(kind="inspect", params={"batch": [1, 8], "device": "cpu"})
    query = CompiledQuery(lambda kind: Job.objects.filter(kind=kind).values_list("params", "created_at"))
    ((params, created_at),) = query.rows("inspect")
    assert params == {"batch": [1, 8], "device": "cpu"} and created_at == Job.objects.get(pk=job.pk).created_at


def test_it_refuses_a_query_that_does_not_take_the_value_as_it_is(engineer) -> None:
    query = CompiledQuery(lambda name: ApiToken.objects.filter(name__icontains=name).values_list("pk"))
    with pytest.raises(ValueError, match="one parameter"):
        query.rows("ci")
