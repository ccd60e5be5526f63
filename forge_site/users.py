"""People: create or update a user in exactly one role, with the change in the audit trail."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from forge_site.audit import audit_record
from forge_site.roles import ROLE_GROUPS, Role


class UserError(Exception):
    """A request to create or change a user that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class UserChange:
    user: User
    created: bool
    changed: bool
    password: str | None  # the generated password, shown once; None when the caller chose it or none was set


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "roles": sorted(str(role) for role, group in ROLE_GROUPS.items() if user.groups.filter(name=group).exists()),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
    }


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def user_upsert(
    *,
    username: str,
    role: Role | None,
    password: str | None = None,
    email: str | None = None,
    staff: bool = False,
    actor: Any = None,
    actor_label: str | None = None,
) -> UserChange:
    """Create the user, or update it: exactly `role`'s group among the role groups, the password if given."""
    username = username.strip()
    if not username:
        raise UserError("The username is empty.")
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if user is None:
            user = User(username=username, email=email or "", is_staff=staff, is_superuser=staff)
            before = None
        else:
            before = _snapshot(user)
        generated = None
        if password is None and created:
            password = generated = generate_password()
        if password is not None:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise UserError("The password was refused: " + " ".join(exc.messages)) from exc
            user.set_password(password)
        if email is not None:
            user.email = email
        if staff:
            user.is_staff = user.is_superuser = True
        user.save()
        if role is not None:
            keep = ROLE_GROUPS[role]
            user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS.values()).exclude(name=keep))
            user.groups.add(Group.objects.get_or_create(name=keep)[0])
        after = _snapshot(user)
        changed = created or after != before or password is not None
        if changed:
            audit_record(
                actor=actor,
                actor_label=actor_label,
                action="user.create" if created else "user.update",
                obj=user,
                object_type="auth.user",
                object_repr=user.username,
                before=before,
                after={**after, "password_changed": password is not None},
            )
    return UserChange(user=user, created=created, changed=changed, password=generated)
