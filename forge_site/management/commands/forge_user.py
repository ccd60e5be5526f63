"""`manage.py forge_user NAME --role engineer|manager|officer [--password P] [--email E]`."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from forge_site.roles import Role
from forge_site.users import UserError, user_upsert


def cli_actor_label() -> str:
    """Who ran the command on the host: the audit trail has no Forge user for a shell session."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry for the uid (some containers)
        return "cli"


class Command(BaseCommand):
    help = "Create a user in one role, or move an existing user to that role (other role groups are removed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", help="set this password (a new user without one gets a generated one)")
        parser.add_argument("--email")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            change = user_upsert(
                username=options["username"],
                role=Role(options["role"]),
                password=options["password"],
                email=options["email"],
                actor_label=cli_actor_label(),
            )
        except UserError as exc:
            raise CommandError(str(exc)) from exc
        user = change.user
        verb = "created" if change.created else ("updated" if change.changed else "unchanged")
        self.stdout.write(f"{verb}: {user.username} ({options['role']})")
        if change.password is not None:
            self.stdout.write(f"password: {change.password}")
