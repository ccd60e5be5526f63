"""Roles and the permission matrix (role x action), enforced the same way in the UI and the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class Role(StrEnum):
    ENGINEER = "engineer"
    MANAGER = "manager"
    OFFICER = "officer"


ROLE_GROUPS: dict[Role, str] = {
    Role.ENGINEER: "ML engineers",
    Role.MANAGER: "Managers",
    Role.OFFICER: "Compliance officers",
}
GROUP_ROLES = {group: role for role, group in ROLE_GROUPS.items()}

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed_in"  # any authenticated user, whatever their role

_ALL = frozenset({Role.ENGINEER, Role.MANAGER, Role.OFFICER})

# action -> who may do it. Every view names exactly one action per HTTP method; a view without one is refused.
PERMISSIONS: dict[str, frozenset[str]] = {
    "site.public": frozenset({PUBLIC}),
    "site.home": frozenset({SIGNED_IN}),
    "token.manage_own": frozenset({SIGNED_IN}),
    "registry.view": _ALL,
    "model.create": frozenset({Role.ENGINEER}),
    "model.edit": frozenset({Role.ENGINEER}),
    "version.upload": frozenset({Role.ENGINEER}),
    "version.download": frozenset({Role.ENGINEER, Role.OFFICER}),
    "version.evaluate": frozenset({Role.ENGINEER}),
    "model.retire": frozenset({Role.ENGINEER, Role.MANAGER}),
    "version.retire": frozenset({Role.ENGINEER, Role.MANAGER}),
    "job.view": _ALL,
    "job.cancel": frozenset({Role.ENGINEER}),
    "audit.view": frozenset({Role.OFFICER}),
    "audit.export": frozenset({Role.OFFICER}),
    # NIST AI RMF reports. Engineers pass this gate only for reports on models they own: an object-level check in
    # governance.selectors.reports.reports_visible_to, which every report view reads through.
    "report.view": _ALL,
    "report.edit": frozenset({Role.OFFICER}),
    "report.finalize": frozenset({Role.OFFICER}),
    "report.download": _ALL,
    # Prometheus scrapes as nobody: /metrics is gated by FORGE_METRICS_ACCESS (loopback, token, open), not by roles.
    "metrics.read": frozenset({PUBLIC}),
    # issue 12, monitoring (INTERFACES.md); monitors are configured with drift.run
    "monitoring.view": _ALL,
    "baseline.upload": frozenset({Role.ENGINEER}),
    "inference.ingest": frozenset({Role.ENGINEER}),
    "drift.run": frozenset({Role.ENGINEER}),
    # Alerts (issue 12): everyone reads alert history, rules, destinations and deliveries; engineers change them.
    "alerts.view": _ALL,
    "alerts.manage": frozenset({Role.ENGINEER}),
    # rollouts (issue 13); service accounts that serve traffic are engineer-role users with a token
    "rollout.view": _ALL,
    "rollout.manage": frozenset({Role.ENGINEER}),
    "rollout.control": frozenset({Role.ENGINEER, Role.MANAGER}),
    "rollout.serve": frozenset({Role.ENGINEER}),
    "promotion.request": frozenset({Role.ENGINEER}),
    "promotion.decide": frozenset({Role.MANAGER}),
    "alias.set": frozenset({Role.MANAGER}),
}


def remember_roles(user: Any, group_names: Iterable[str | None]) -> frozenset[str]:
    """Set the user's roles from group names already loaded (for this request only)."""
    roles = frozenset(GROUP_ROLES[name] for name in group_names if name in GROUP_ROLES)
    user._forge_roles = roles
    return roles


def user_roles(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_forge_roles", None)
    if cached is None:
        cached = remember_roles(user, user.groups.values_list("name", flat=True))
    return cached


def user_can(user: Any, action: str) -> bool:
    allowed = PERMISSIONS.get(action)
    if allowed is None:
        raise KeyError(f"unknown action {action!r}: add it to forge_site.roles.PERMISSIONS")
    if PUBLIC in allowed:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    if SIGNED_IN in allowed:
        return True
    return bool(user_roles(user) & allowed)


ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def require_action(action: str) -> Callable[[ViewFunc], ViewFunc]:
    """Decorate an HTML view: anonymous users go to the login page, users without the role get 403."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not user_can(request.user, action):
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                raise PermissionDenied(f"Your role may not do this ({action}).")
            return view(request, *args, **kwargs)

        wrapper.forge_action = action  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def view_actions(view: Any) -> dict[str, str] | str | None:
    """The rule a URL's view declares: one action, or a map of HTTP method -> action (DRF views)."""
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is not None and hasattr(cls, "required_actions"):
        return dict(cls.required_actions)
    return getattr(view, "forge_action", None)


class ActionPermission(BasePermission):
    """DRF side of the matrix: a view declares `required_actions = {"GET": ..., "POST": ...}`."""

    message = "Your role may not do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actions: dict[str, str] = getattr(view, "required_actions", {})
        method = request.method or "GET"
        if method.lower() not in view.http_method_names or not hasattr(view, method.lower()):
            return True  # no handler: DRF answers 405 Method Not Allowed, which says more than a 403
        action = actions.get("GET" if method in {"HEAD", "OPTIONS"} else method)
        if action is None:
            return False
        allowed = user_can(request.user, action)
        if not allowed:
            self.message = f"Your role may not do this ({action})."
        return allowed


class _Can:
    def __init__(self, user: Any) -> None:
        self._user = user

    def __getattr__(self, name: str) -> bool:
        return user_can(self._user, name.replace("__", "."))


def roles_context(request: HttpRequest) -> dict[str, Any]:
    """Templates ask `{% if can.version__upload %}` (double underscore stands for the dot)."""
    # An error page for a request refused before AuthenticationMiddleware ran (a bad Host header) has no user.
    user = getattr(request, "user", None)
    return {"can": _Can(user), "forge_roles": sorted(user_roles(user))}
