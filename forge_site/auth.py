"""Session authentication that loads the user's role groups with the user, refuses locked-out sign-ins, and the
login forms that say so."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpRequest

from forge_site.login_lockout import login_lock_status, refused_while_locked
from forge_site.roles import remember_roles


class RoleAwareModelBackend(ModelBackend):
    """Django's ModelBackend, except that restoring the user of a session also reads the user's groups in the same
    query (one row per group), so a page's permission checks need no query of their own; and a sign-in for a
    locked-out username or from a locked-out address is refused before the password is checked
    (forge_site.login_lockout). The check is here so that it holds for every login form, the admin's included."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        lock = login_lock_status(username=username or "", request=request)
        if lock is not None:
            if request is not None:
                request._forge_login_lock = lock  # type: ignore[attr-defined]
            raise PermissionDenied(lock.message)  # authenticate() stops at this backend and reports a failure
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        rows = list(
            get_user_model()._default_manager.filter(pk=user_id).annotate(group_name=F("groups__name")).order_by()
        )
        if not rows or not self.user_can_authenticate(rows[0]):
            return None
        user = rows[0]
        remember_roles(user, [row.group_name for row in rows])
        return user


class _LockoutMessage:
    """A login form that, when the sign-in was refused by a lock, says so instead of "wrong password"."""

    request: HttpRequest | None

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # Refused by a lock, or this failure was the one that set it.
            username = str(self.cleaned_data.get("username") or "")  # type: ignore[attr-defined]
            lock = refused_while_locked(self.request) or login_lock_status(username=username, request=self.request)
            if lock is None:
                raise
            raise forms.ValidationError(lock.message, code="locked") from None


class LoginForm(_LockoutMessage, AuthenticationForm):
    pass


class AdminLoginForm(_LockoutMessage, AdminAuthenticationForm):
    pass
