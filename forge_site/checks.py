"""System checks for configuration mistakes that settings alone cannot refuse."""

from __future__ import annotations

import os
from typing import Any

from django.core.checks import CheckMessage, Warning, register


@register()
def check_legacy_debug_variable(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """`DEBUG` was the variable before the profiles: a deployment that still sets `DEBUG=false` expects the
    production settings, which now come from FORGE_PROFILE=production, so say so instead of ignoring it."""
    if "DEBUG" not in os.environ:
        return []
    return [
        Warning(
            "The DEBUG environment variable is not read.",
            hint="Set FORGE_PROFILE=production for a deployment (HTTPS, Secure cookies, HSTS), or FORGE_DEBUG=1 "
            "for Django's debug pages on a developer's machine (docs/operations.md).",
            id="forge.W001",
        )
    ]
