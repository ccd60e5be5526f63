"""Extension points of the registry's pages for apps above it: badges beside a version, actions on its page.

An app registers a function by dotted path in settings (it is never imported from here by name, so the registry
does not depend on it):

- FORGE_VERSION_BADGES: `badges(versions) -> {version_pk: [{"label", "level", "url", "title"}]}`, called once per
  page with all the versions it shows (so one query serves a whole table). `level` is ok, warn, bad or idle.
- FORGE_VERSION_LINKS: `links(version, user) -> [{"label", "url"}]`, buttons on a version's page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.conf import settings
from django.utils.module_loading import import_string

register = template.Library()


@register.simple_tag
def version_badges(versions: Iterable[Any]) -> dict[int, list[dict[str, str]]]:
    shown = list(versions)
    badges: dict[int, list[dict[str, str]]] = {}
    if not shown:
        return badges
    for path in getattr(settings, "FORGE_VERSION_BADGES", []):
        for pk, items in import_string(path)(shown).items():
            badges.setdefault(pk, []).extend(items)
    return badges


@register.simple_tag
def version_badges_one(version: Any) -> list[dict[str, str]]:
    return version_badges([version]).get(version.pk, [])


@register.filter
def badges_of(badges: dict[int, list[dict[str, str]]], version: Any) -> list[dict[str, str]]:
    return badges.get(int(getattr(version, "pk", 0) or 0), []) if badges else []


@register.simple_tag(takes_context=True)
def version_links(context: dict[str, Any], version: Any) -> list[dict[str, str]]:
    request = context.get("request")
    user = getattr(request, "user", None)
    links: list[dict[str, str]] = []
    for path in getattr(settings, "FORGE_VERSION_LINKS", []):
        links.extend(import_string(path)(version, user))
    return links
