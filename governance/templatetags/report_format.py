"""Formatting for report pages and PDFs: the snapshot stores instants as ISO 8601 strings."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def utc(value: object, precision: str = "") -> str:
    """'2026-03-01T12:30:05Z' -> '2026-03-01 12:30 UTC', or with precision "s" '2026-03-01 12:30:05' (anything
    unparsable comes back as it was)."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if precision == "s" else "%Y-%m-%d %H:%M UTC")
