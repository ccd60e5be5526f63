"""Session authentication that loads the user's role groups with the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import F

from forge_site.roles import remember_roles


class RoleAwareModelBackend(ModelBackend):
    """Django's ModelBackend, except that restoring the user of a session also reads the user's groups in the same
    query (one row per group), so a page's permission checks need no query of their own."""

    def get_user(self, user_id: Any) -> Any:
        rows = list(
            get_user_model()._default_manager.filter(pk=user_id).annotate(group_name=F("groups__name")).order_by()
        )
        if not rows or not self.user_can_authenticate(rows[0]):
            return None
        user = rows[0]
        remember_roles(user, [row.group_name for row in rows])
        return user
