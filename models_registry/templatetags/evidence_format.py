"""Numbers of parity and benchmark results as people read them: `{{ x|sig }}`, `{{ share|pct }}`, `{{ r|times }}`."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()
TIMES = "\N{MULTIPLICATION SIGN}"


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@register.filter
def sig(value: Any, digits: int = 3) -> str:
    """A number to `digits` significant figures; very small or large ones in scientific notation; None as a dash."""
    number = _number(value)
    if number is None:
        return "—" if value in (None, "") else str(value)
    if not math.isfinite(number):
        return str(number)
    if number == 0:
        return "0"
    digits = max(1, int(digits))
    magnitude = math.floor(math.log10(abs(number)))
    if magnitude < -3 or magnitude >= 7:
        return f"{number:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    return f"{number:,.{decimals}f}"


@register.filter
def pct(value: Any, digits: int = 3) -> str:
    """A share (0..1) as a percentage."""
    number = _number(value)
    if number is None:
        return "—"
    return f"{sig(number * 100, digits)}%"


@register.filter
def times(value: Any) -> str:
    """A ratio as '1.23' followed by a multiplication sign."""
    number = _number(value)
    return "—" if number is None else f"{sig(number, 3)}{TIMES}"


@register.filter
def words(value: Any) -> str:
    """A result key as words: 'input_hash' -> 'input hash'."""
    return str(value).replace("_", " ")
