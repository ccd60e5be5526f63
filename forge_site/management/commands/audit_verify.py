"""`manage.py audit_verify`: walk the hash chain; exit 1 at the first broken link (suitable for cron)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from forge_site.audit import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; prints the first broken link and exits 1 if there is one."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_verify_chain()
        if broken is None:
            self.stdout.write(f"OK: {checked} events verified")
            return
        self.stderr.write(f"BROKEN at event #{broken.seq}: {broken.reason}")
        self.stderr.write(f"({checked} events before it verified)")
        sys.exit(1)
