"""Login successes and failures go into the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from forge_site.audit import audit_record


@receiver(user_login_failed)
def _audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        actor=None,
        actor_label=username or "anonymous",
        action="auth.login_failed",
        object_type="auth.user",
        object_id=username,
        object_repr=username,
        after={"ip": request.META.get("REMOTE_ADDR") if request is not None else None},
    )


@receiver(user_logged_in)
def _audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.login", obj=user, object_type="auth.user")
