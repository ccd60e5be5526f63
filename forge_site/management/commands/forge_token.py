"""`manage.py forge_token NAME [--days N] [--name LABEL]`: prints a new API token, once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from forge_site.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is stored hashed and cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None, help="lifetime in days (0: never expires)")
        parser.add_argument("--name", default="", help="a label, e.g. 'ci-pipeline'")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}; create one with forge_user first.")
        if not user.is_active:
            raise CommandError(f"{user.username} is inactive; a token for them would be refused.")
        days = options["days"]
        if days is not None and days < 0:
            raise CommandError("--days must be 0 (never expires) or a positive number of days.")
        if len(options["name"]) > 100:
            raise CommandError("--name is limited to 100 characters.")
        token, plain = token_create(user=user, name=options["name"], days=days)
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        # The token alone goes to stdout so scripts can capture it; the note goes to stderr.
        self.stderr.write(f"token {token.prefix} for {user.username}, {expiry}")
        self.stdout.write(plain)
