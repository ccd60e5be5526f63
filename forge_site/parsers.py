"""Text that arrives as JSON: a string escape such as "\\ud800" (a lone surrogate) parses into a Python string that is
not text. Neither UTF-8 nor either database can store it, so it used to surface as a 500 when it was saved (a
UnicodeEncodeError on SQLite, a DataError on PostgreSQL). DRF's CharField already refuses such strings; JSON values
(a version's metrics, say) are checked here."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def surrogate_in(value: Any) -> str | None:
    """The first lone surrogate in the strings of `value`, keys included, as "U+D800"; None if every string is text."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError as exc:
        return f"U+{ord(exc.object[exc.start]):04X}"
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body whose strings are not all text (a 400 instead of a 500 at save time)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        surrogate = surrogate_in(data)
        if surrogate:
            raise ParseError(
                f"JSON parse error - a string holds {surrogate}, a lone surrogate: it is not a character. "
                "Send text as UTF-8 or as escapes of whole characters."
            )
        return data
