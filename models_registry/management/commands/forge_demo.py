"""`manage.py forge_demo`: seeds the demo, one step per app, the registry's first.

The steps are the functions named in settings.FORGE_DEMO_STEPS (dotted paths to `seed(*, stdout, now) -> None`):
models_registry.demo.seed (users, models, versions, evidence, aliases) always runs first, then each other step in
the order the setting lists them, so an app adds its demo data without editing the registry. Every step is
idempotent: a second run changes nothing.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.module_loading import import_string

from models_registry.demo import LOGINS, DemoFailed

REGISTRY_STEP = "models_registry.demo.seed"


def demo_steps() -> list[str]:
    """The registry's step, then the others in settings order (each once)."""
    others = [path for path in getattr(settings, "FORGE_DEMO_STEPS", []) if path != REGISTRY_STEP]
    return [REGISTRY_STEP, *dict.fromkeys(others)]


class Command(BaseCommand):
    help = "Seed the demo: the registry's step, then each app's in settings.FORGE_DEMO_STEPS (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-logins", action="store_true", help="only print the demo logins")
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("FORGE_WEB_PORT") or 8000),
            help="the web port the printed login URL names (default: $FORGE_WEB_PORT, else 8000)",
        )
        parser.add_argument(
            "--allow-in-production",
            "--allow-without-debug",  # its name before the profiles; kept so existing scripts keep working
            dest="allow_in_production",
            action="store_true",
            help="seed even with FORGE_PROFILE=production (the demo passwords are public: never on a real deployment)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_logins"]:
            self.print_logins(port=options["port"])
            return
        # The guard keys off the deployment profile, not DEBUG: `make run` serves with DEBUG off and seeds the demo.
        if settings.PRODUCTION and not options["allow_in_production"]:
            raise CommandError(
                "forge_demo creates users whose passwords are published; refusing with FORGE_PROFILE=production. "
                "Pass --allow-in-production for a throw-away installation."
            )
        now = timezone.now()  # the demo's one clock, handed to every step
        for path in demo_steps():
            try:
                import_string(path)(stdout=self.stdout, now=now)
            except DemoFailed as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS("demo ready"))

    def print_logins(self, *, port: int = 8000) -> None:
        self.stdout.write(f"Demo logins (http://127.0.0.1:{port}/accounts/login/):")
        self.stdout.write(f"  {'role':<9} {'username':<9} {'password':<18} what for")
        for login in LOGINS:
            role = login.role.value if login.role else "staff"
            self.stdout.write(f"  {role:<9} {login.username:<9} {login.password:<18} {login.note}")
