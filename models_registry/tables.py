"""The registry list's table body, rendered in Python.

A 100-row page through the template language cost ~50 ms of variable lookups, escaping and date filters on this
hardware (benchmarks/registry_list.py, docs/performance.md). Here the same markup is built with f-strings in which
EVERY value from the database goes through `_e` (the standard library's html.escape, quote=True: & < > " ' are
escaped, as Django's own escape does). Only this hot table is built here; every other page stays a template.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape as _e
from typing import Any
from urllib.parse import quote

from django.utils.safestring import SafeString, mark_safe

EMPTY = '<span class="faint">—</span>'
RETIRED = ' <span class="badge badge-retired">retired</span>'
DESCRIPTION_PREVIEW = 240  # characters of a description the list shows (the model page shows all of it)


def _preview(text: str) -> str:
    return text if len(text) <= DESCRIPTION_PREVIEW else text[: DESCRIPTION_PREVIEW - 1].rstrip() + "…"


def _tags(names: list[str]) -> str:
    if not names:
        return EMPTY
    return "".join(f'<a class="tag" href="?tag={_e(quote(name))}">{_e(name)}</a>' for name in names)


def _latest(row: dict[str, Any], version_url: str) -> str:
    version = row["latest_version__version"]
    if not version:
        return '<span class="faint">no versions</span>'
    status = _e(row["latest_version__status"])
    url = version_url.replace("__name__", row["name"]).replace("__version__", version)
    retired = RETIRED if row["latest_version__retired_at"] else ""
    return (
        f'<a class="mono" href="{_e(url)}">{_e(version)}</a> '
        f'<span class="badge badge-{status}" data-status="{status}">{status}</span>{retired}'
    )


def _aliases(aliases: list[dict[str, Any]]) -> str:
    if not aliases:
        return EMPTY
    return "".join(
        f'<div><span class="alias alias-{_e(a["alias"])}" title="since '
        f'{_day(a["started_at"])} {_minute(a["started_at"])}">{_e(a["alias"])}</span> '
        f'<span class="mono small">{_e(a["version"])}</span></div>'
        for a in aliases
    )


# The rows' instants are ISO 8601 UTC text ("2026-01-31T09:05:00.123456Z", see selectors._db_timestamp): the day and
# the minute are slices of it.
def _day(instant: str) -> str:
    return instant[:10]


def _minute(instant: str) -> str:
    return instant[11:16]


def model_table_rows(rows: Iterable[dict[str, Any]], *, model_url: str, version_url: str) -> SafeString:
    """`<tr>`s for selectors.model_page_rows rows. URLs are patterns with __name__/__version__ placeholders (names and
    versions are URL-safe by validation, and escaped here all the same)."""
    html = []
    for row in rows:
        updated = row["updated_at"]
        name = _e(row["name"])
        description = _e(_preview(row["description"]))
        tier = _e(row["risk_tier"])
        sub = f'<div class="cell-sub" title="{description}">{description}</div>' if description else ""
        url = _e(model_url.replace("__name__", row["name"]))
        retired = RETIRED if row["retired_at"] else ""
        html.append(
            f'<tr><td><a class="cell-title" href="{url}">{name}</a>{retired}{sub}</td>'
            f'<td><span class="tier tier-{tier}">{tier.capitalize()}</span></td>'
            f'<td class="tags-cell">{_tags(row["tags"])}</td>'
            f'<td class="nowrap">{_latest(row, version_url)}</td>'
            f'<td class="nowrap">{_aliases(row["aliases"])}</td>'
            f'<td class="num">{int(row["version_count"])}</td>'
            f'<td class="hide-sm small">{_e(row["owner__username"] or "—")}</td>'
            f'<td class="nowrap small" title="{updated[:-1]}+00:00">{_day(updated)}'
            f'<div class="faint">{_minute(updated)}</div></td></tr>'
        )
    return mark_safe("\n".join(html))  # noqa: S308  (every database value above went through _e)
