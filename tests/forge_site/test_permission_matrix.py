"""Walks every URL pattern of the project as anonymous and as every role, against forge_site.roles.PERMISSIONS.

A new view is picked up automatically: if it declares no rule the suite fails naming it, and if its URL takes a
kwarg this file cannot fill, the suite fails naming the URL and the kwarg (add it to KWARG_VALUES below).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.views import APIView

from forge_site.models import ApiToken, AuditEvent, Job
from forge_site.roles import PERMISSIONS, PUBLIC, ROLE_GROUPS, SIGNED_IN, Role, view_actions
from forge_site.tokens import token_create
from governance.models import Report
from governance.services.reports import report_create
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from tests.api.helpers import mlp, temp_upload
from tests.conftest import make_user
from tests.torchscript_models import MLP_SPEC

EXCLUDED_PREFIXES = ("admin/", "static/", "media/", "__debug__/")

# Who is asked: None is anonymous; "nobody" is signed in but in no role group.
CALLERS: dict[str, Role | str | None] = {
    "anonymous": None,
    "engineer": Role.ENGINEER,
    "manager": Role.MANAGER,
    "officer": Role.OFFICER,
    "nobody": "no-role",
}

# Statuses an allowed caller may get besides the usual (only where a view's own answer is not a success).
EXPECTED_STATUS: dict[str, set[int]] = {
    "healthz": {200, 503},  # 503 when no Celery worker is up, which is this test's normal state
    # monitoring reads of a version with no baseline or monitor yet (this test's world has neither)
    "api-version-baseline": {200, 404},
    "api-version-monitor": {200, 404},
    "api-version-fairness": {200, 409},
}


@dataclass(frozen=True)
class Route:
    """One URL pattern, flattened: its full route, its (namespaced) name and its view."""

    route: str
    name: str | None
    callback: Callable[..., Any]
    kwargs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"/{self.route} ({self.name or 'unnamed'})"


_KWARG_RE = re.compile(r"<(?:[^>:]+:)?(\w+)>|\(\?P<(\w+)>")


def _walk(resolver: URLResolver, prefix: str = "", namespace: str | None = None) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern).lstrip("^")
        if route.startswith(EXCLUDED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            yield from _walk(entry, route, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            kwargs = tuple(a or b for a, b in _KWARG_RE.findall(route))
            yield Route(route=route, name=name, callback=entry.callback, kwargs=kwargs)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver()))


ROUTES = all_routes()


def _is_api(rule: dict[str, str] | str) -> bool:
    return isinstance(rule, dict)


def test_the_walker_sees_the_project():
    routes = {route.name for route in ROUTES}
    assert {"home", "login", "api-models", "api-version", "api-job", "api-schema"} <= routes
    assert not any(route.route.startswith("admin/") for route in ROUTES)


def test_every_url_declares_a_rule_for_every_method_it_serves():
    problems = []
    for route in ROUTES:
        rule = view_actions(route.callback)
        if not rule:
            problems.append(f"{route.label}: the view declares no rule (use require_action or required_actions)")
            continue
        actions = rule.values() if isinstance(rule, dict) else [rule]
        problems += [f"{route.label}: unknown action {a!r}" for a in actions if a not in PERMISSIONS]
        cls = getattr(route.callback, "cls", None)
        if isinstance(rule, dict) and isinstance(cls, type) and issubclass(cls, APIView):
            served = {m.upper() for m in cls.http_method_names if hasattr(cls, m)} - {"OPTIONS", "HEAD"}
            missing = served - set(rule)
            if missing:
                problems.append(f"{route.label}: serves {sorted(missing)} without an action in required_actions")
    assert not problems, "URLs without a permission rule:\n  " + "\n  ".join(problems)


# --- the matrix -------------------------------------------------------------------------------------------------------


def may(action: str, caller: str) -> bool:
    """Straight from PERMISSIONS, independently of the code under test."""
    allowed = PERMISSIONS[action]
    if PUBLIC in allowed:
        return True
    if caller == "anonymous":
        return False
    return SIGNED_IN in allowed or CALLERS[caller] in allowed


@dataclass
class World:
    """One of everything a URL kwarg can point at."""

    users: dict[str, User]
    model: RegisteredModel
    version: ModelVersion
    job: Job
    tokens: dict[str, ApiToken]
    report: Report
    alerts: dict[str, int]  # ids of one alert rule, destination, alert and delivery


def _user_for(caller: str, role: Role | str | None) -> User:
    return make_user(caller, role if isinstance(role, Role) else None)


@pytest.fixture
def world(db, settings) -> World:
    users = {caller: _user_for(caller, role) for caller, role in CALLERS.items() if role is not None}
    engineer = users["engineer"]
    model = model_create(name="credit-risk", owner=engineer, tags=["credit"])
    version = version_create(
        model=model, version="1.0.0", artifact=temp_upload("m.pt", mlp()), input_spec=MLP_SPEC, created_by=engineer
    )
    version = version_record_inspection(version_id=version.pk, ok=True, inspection={"parameters": 1}, reason="")
    alias_set(model=model, alias="champion", version=version, actor=users["manager"])
    job = Job.objects.get(subject_id=str(version.pk))
    tokens = {caller: token_create(user=user, name="matrix")[0] for caller, user in users.items()}
    # on the engineer's model, so the engineer passes the reports' object-level check too
    report = report_create(actor=users["officer"], model=model, start="2026-01-01", end="2026-12-31")
    assert set(ROLE_GROUPS) == {Role.ENGINEER, Role.MANAGER, Role.OFFICER}
    return World(
        users=users,
        model=model,
        version=version,
        job=job,
        tokens=tokens,
        report=report,
        alerts=_alerts(engineer, version),
    )


def _alerts(engineer: User, version: ModelVersion) -> dict[str, int]:
    from governance.models import AlertDelivery
    from governance.services.alert_destinations import alert_destination_create
    from governance.services.alerts import alert_raise, alert_rule_create

    rule = alert_rule_create(actor=engineer, name="matrix", metric="drift_share", threshold=0.5)
    destination = alert_destination_create(actor=engineer, name="matrix", kind="slack", url="https://93.184.215.14/h")
    alert = alert_raise(
        model=version.model,
        version=version,
        source="rollout",
        metric="m",
        feature=None,
        value=1.0,
        threshold=0.5,
        severity="warning",
        message="matrix",
        dedup_key="matrix",
    )
    assert alert is not None
    delivery = AlertDelivery.objects.get(alert=alert)
    return {"rule": rule.pk, "destination": destination.pk, "alert": alert.pk, "delivery": delivery.pk}


# URL kwarg -> its value, given the world and who is asking. Extend this when a view takes a new kind of kwarg.
KWARG_VALUES: dict[str, Callable[[World, str], Any]] = {
    "name": lambda w, caller: w.model.name,
    "model_name": lambda w, caller: w.model.name,
    "version": lambda w, caller: w.version.version,
    "alias": lambda w, caller: "champion",
    "kind": lambda w, caller: "artifact",
    "id": lambda w, caller: w.job.pk,
    "job_id": lambda w, caller: w.job.pk,
    "prefix": lambda w, caller: w.tokens.get(caller, w.tokens["engineer"]).prefix,
    "seq": lambda w, caller: AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first(),
    "report_id": lambda w, caller: w.report.pk,
    "sub_id": lambda w, caller: "GOVERN-1.1",
    "alert_id": lambda w, caller: w.alerts["alert"],
    "rule_id": lambda w, caller: w.alerts["rule"],
    "destination_id": lambda w, caller: w.alerts["destination"],
    "delivery_id": lambda w, caller: w.alerts["delivery"],
    "rollout_id": lambda w, caller: _rollout(w).pk,
}


def _rollout(world: World) -> Any:
    """A running rollout of the world's model (created on first use: most URLs do not need one)."""
    from rollouts.models import Rollout
    from rollouts.services import rollout_create, rollout_start

    existing = Rollout.objects.filter(model=world.model).first()
    if existing is not None:
        return existing
    engineer = world.users["engineer"]
    challenger = version_create(
        model=world.model,
        version="1.1.0",
        artifact=temp_upload("c.pt", mlp(1)),
        input_spec=MLP_SPEC,
        created_by=engineer,
    )
    challenger = version_record_inspection(version_id=challenger.pk, ok=True, inspection={"parameters": 1}, reason="")
    rollout = rollout_create(model=world.model, challenger=challenger, plan=[5, 50], actor=engineer)
    return rollout_start(rollout=rollout, actor=engineer)


def _url(route: Route, world: World, caller: str) -> str:
    values = {}
    for kwarg in route.kwargs:
        if kwarg not in KWARG_VALUES:
            pytest.fail(
                f"{route.label} takes the URL kwarg {kwarg!r}, which the permission matrix cannot fill: "
                f"add it to KWARG_VALUES in tests/forge_site/test_permission_matrix.py"
            )
        values[kwarg] = KWARG_VALUES[kwarg](world, caller)
    if route.name:
        return reverse(route.name, kwargs=values or None)
    return "/" + re.sub(r"<(?:[^>:]+:)?(\w+)>", lambda m: str(values[m.group(1)]), route.route)


def _client(world: World, caller: str) -> Client:
    client = Client()
    if caller != "anonymous":
        client.force_login(world.users[caller])
    return client


def _sent_to_login(response: Any) -> bool:
    location = response.get("Location", "")
    return response.status_code == 302 and location.startswith(resolve_url(settings.LOGIN_URL)) and "next=" in location


def _request(client: Client, method: str, url: str) -> Any:
    return getattr(client, method.lower())(url)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name or r.route for r in ROUTES])
def test_every_url_lets_in_exactly_the_roles_that_may_use_it(route: Route, world: World):
    rule = view_actions(route.callback)
    assert rule, f"{route.label} declares no rule"
    api = _is_api(rule)
    methods: dict[str, str] = dict(rule) if isinstance(rule, dict) else {"GET": rule}
    failures = []
    for method, action in methods.items():
        for caller in CALLERS:
            url = _url(route, world, caller)
            sent = method
            response = _request(_client(world, caller), sent, url)
            if not api and response.status_code == 405:  # a POST-only page
                sent = "POST"
                response = _request(_client(world, caller), sent, url)
            status = response.status_code
            where = f"{sent} {url} as {caller} ({action})"
            if may(action, caller):
                ok = status in EXPECTED_STATUS.get(route.name or "", set()) or (
                    status not in {401, 403, 404, 405} and status < 500 and not _sent_to_login(response)
                )
                if not ok:
                    failures.append(f"{where}: allowed, but got {status} {response.get('Location', '')}")
            elif api:
                expected = 401 if caller == "anonymous" else 403
                if status != expected:
                    failures.append(f"{where}: must be refused with {expected}, got {status}")
                elif status == 401 and not response.get("WWW-Authenticate", "").startswith("Bearer"):
                    failures.append(f"{where}: a 401 must carry WWW-Authenticate: Bearer")
            elif caller == "anonymous":
                if not _sent_to_login(response):
                    failures.append(f"{where}: anonymous must be sent to the login page, got {status}")
            elif status != 403:
                failures.append(f"{where}: must be refused with 403, got {status}")
    assert not failures, f"{route.label}:\n  " + "\n  ".join(failures)
