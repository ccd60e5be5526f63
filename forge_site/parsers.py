"""JSON bodies the API refuses while parsing, with a 400 in its error shape instead of a 500:

- a string escape such as "\\ud800" (a lone surrogate) parses into a Python string that is not text. Neither UTF-8
  nor either database can store it, so it used to surface as a 500 when it was saved (a UnicodeEncodeError on
  SQLite, a DataError on PostgreSQL). DRF's CharField already refuses such strings; JSON values (a version's
  metrics, say) are checked here.
- arrays or objects nested deeper than Python's recursion limit (a few hundred levels) made json raise
  RecursionError."""

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
        try:
            data = super().parse(stream, media_type, parser_context)
            surrogate = surrogate_in(data)
        except RecursionError:
            raise ParseError(
                "JSON parse error - arrays or objects are nested too deeply (hundreds of levels); no request to "
                "this API needs more than a few."
            ) from None
        if surrogate:
            raise ParseError(
                f"JSON parse error - a string holds {surrogate}, a lone surrogate: it is not a character. "
                "Send text as UTF-8 or as escapes of whole characters."
            )
        return data
