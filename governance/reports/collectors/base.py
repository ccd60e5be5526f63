"""The shape every collector returns: evidence items as plain JSON values, copied from the records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from governance.nist_rmf.mapping import Kind


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def clipped(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis where it was cut (a summary line, never a record's value)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(value: Any) -> Any:
    """A JSON round trip: what the snapshot stores is exactly what it hashes (dates become strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def evidence_item(
    *,
    kind: Kind,
    key: str,
    title: str,
    summary: str,
    ok: bool | None,
    at: datetime | None,
    model: str = "",
    version: str = "",
    ref: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One piece of evidence. `ok`: True supports the outcome, False counts against it, None is informational.
    `ref` points at the record it was copied from ({"type", "id", "path"}); `values` are the figures, copied."""
    return {
        "kind": str(kind),
        "key": key,
        "title": title,
        "summary": summary,
        "ok": ok,
        "at": iso(at),
        "model": model,
        "version": version,
        "ref": ref or {},
        "values": plain(values or {}),
    }
