"""Login successes and failures go into the audit trail, and failures count towards the login lockout."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from forge_site.audit import audit_record
from forge_site.login_lockout import login_failure_record, login_success_record, refused_while_locked
from forge_site.throttles import client_address

logger = logging.getLogger(__name__)


@receiver(user_login_failed)
def _audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    if refused_while_locked(request) is not None:
        # The lock was audited when it was set; what it refuses is only logged (a flood must not fill the trail).
        logger.warning("sign-in refused while locked: %r from %s", username, client_address(request))
        return
    audit_record(
        actor=None,
        actor_label=username or "anonymous",
        action="auth.login_failed",
        object_type="auth.user",
        object_id=username,
        object_repr=username,
        after={"ip": client_address(request) if request is not None else None},
    )
    login_failure_record(username=username, request=request)


@receiver(user_logged_in)
def _audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(actor=user, action="auth.login", obj=user, object_type="auth.user")
    login_success_record(username=user.get_username())
