"""Limits on what people type into the registry, and the checks that enforce them. Pure (no Django).

The registry's services call these, so the browser form and the API refuse the same input with the same message,
which names the field and the limit. Why limits at all: a model with 20,000 tags and a 2.5 MB description was once
accepted, and every user's registry page grew to 10 MB. The numbers are documented in docs/api.md ("Limits").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

MODEL_NAME_MAX = 128
VERSION_MAX = 64
TAGS_MAX = 20  # per model and per version
TAG_MAX = 64
DESCRIPTION_MAX = 5_000
INTENDED_USE_MAX = 5_000
SOURCE_COMMIT_MAX = 80
TRAINING_DATA_MAX = 500
REASON_MAX = 2_000  # why a model or version was retired
ALIAS_REASON_MAX = 500  # why an alias moved
METRICS_MAX = 100  # entries, counted at every level
METRIC_KEY_MAX = 64
METRIC_TEXT_MAX = 256
METRIC_LIST_MAX = 256
METRICS_DEPTH_MAX = 3  # {"auc": 0.9} is one level; {"by_segment": {"eu": {"auc": 0.9}}} is three
METRICS_BYTES_MAX = 32 * 1024

# A tag starts with a letter or digit (any script) and holds letters, digits and . _ - : (no spaces, no markup).
TAG_RE = re.compile(r"^[^\W_][\w.:-]*$")
TAG_CHARACTERS = "letters, digits, '.', '_', '-' and ':', starting with a letter or digit"
# Control characters (newlines included) have no place in one-line lineage fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LimitError(ValueError):
    """Input over a limit or outside its character set; `field` names the input."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def check_text(value: str, *, field: str, limit: int, one_line: bool = False) -> str:
    """The text as given, if it is at most `limit` characters (and on one line when asked)."""
    if len(value) > limit:
        raise LimitError(f"{field} is {len(value):,} characters long; the limit is {limit:,}.", field=field)
    if one_line and _CONTROL.search(value):
        raise LimitError(f"{field} must be one line of text, without control characters.", field=field)
    return value


def clean_tags(tags: Iterable[Any] | None, *, field: str = "tags") -> list[str]:
    """Tags lowercased, stripped and without repeats, at most TAGS_MAX of TAG_MAX characters each."""
    cleaned: list[str] = []
    for raw in tags or []:
        tag = str(raw).strip().lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise LimitError(
                f"The tag {tag[:20]!r}… is {len(tag):,} characters long; the limit is {TAG_MAX}.", field=field
            )
        if not TAG_RE.match(tag):
            raise LimitError(f"The tag {tag!r} is not allowed: use {TAG_CHARACTERS}.", field=field)
        if tag not in cleaned:
            cleaned.append(tag)
            if len(cleaned) > TAGS_MAX:
                raise LimitError(f"More than {TAGS_MAX} different tags; the limit is {TAGS_MAX}.", field=field)
    return cleaned


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _check_metric_value(value: Any, path: str, depth: int, counter: list[int]) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise LimitError(f"metrics {path} is {value}; metrics must be finite numbers.", field="metrics")
        return
    if isinstance(value, str):
        if len(value) > METRIC_TEXT_MAX:
            raise LimitError(
                f"metrics {path} is {len(value):,} characters long; the limit for a text value is {METRIC_TEXT_MAX}.",
                field="metrics",
            )
        return
    if isinstance(value, list):
        if len(value) > METRIC_LIST_MAX:
            raise LimitError(
                f"metrics {path} has {len(value):,} items; the limit for a list is {METRIC_LIST_MAX}.", field="metrics"
            )
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                raise LimitError(
                    f"metrics {path}[{index}] is {_describe(item)}; a list holds numbers, text, true/false or null.",
                    field="metrics",
                )
            _check_metric_value(item, f"{path}[{index}]", depth, counter)
        return
    if isinstance(value, dict):
        _check_metric_object(value, path, depth + 1, counter)
        return
    raise LimitError(
        f"metrics {path} is {_describe(value)}; use a number, text, true/false, null, a list or an object.",
        field="metrics",
    )


def _check_metric_object(value: dict[Any, Any], path: str, depth: int, counter: list[int]) -> None:
    if depth > METRICS_DEPTH_MAX:
        raise LimitError(
            f"metrics {path} nests objects {depth} levels deep; the limit is {METRICS_DEPTH_MAX}.", field="metrics"
        )
    for key, item in value.items():
        counter[0] += 1
        if counter[0] > METRICS_MAX:
            raise LimitError(
                f"metrics hold more than {METRICS_MAX} entries (counted at every level); the limit is {METRICS_MAX}.",
                field="metrics",
            )
        name = str(key)
        if not name.strip() or len(name) > METRIC_KEY_MAX or _CONTROL.search(name):
            raise LimitError(
                f"The metric name {name[:20]!r}{'…' if len(name) > 20 else ''} is not allowed: names are 1 to "
                f"{METRIC_KEY_MAX} characters of one line.",
                field="metrics",
            )
        _check_metric_value(item, f"{path}[{name!r}]" if path else f"[{name!r}]", depth, counter)


def check_metrics(metrics: Any) -> dict[str, Any]:
    """A version's metrics: a JSON object of at most METRICS_MAX entries (counted at every level), names of at most
    METRIC_KEY_MAX characters, values that are finite numbers, short text, true/false, null, lists of those, or
    objects nested at most METRICS_DEPTH_MAX levels, and at most METRICS_BYTES_MAX bytes as JSON."""
    if not isinstance(metrics, dict):
        raise LimitError('metrics must be a JSON object such as {"auc": 0.91}.', field="metrics")
    _check_metric_object(metrics, "", 1, [0])
    size = len(json.dumps(metrics, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    if size > METRICS_BYTES_MAX:
        raise LimitError(f"metrics are {size:,} bytes as JSON; the limit is {METRICS_BYTES_MAX:,}.", field="metrics")
    return metrics
