"""A rollout's plan of steps, validated and normalised (pure: no Django).

A plan is given either as a plain list of challenger shares in percent, `[5, 25, 50, 100]`, whose steps have no
minimums (each advances when someone advances it), or as a list of steps with their minimums,
`[{"share": 5, "min_minutes": 30, "min_samples": 1000}, …]`, which may advance automatically. A plan is stored
normalised, every step with all three keys.
"""

from __future__ import annotations

import math
from typing import Any

MAX_STEPS = 20
MAX_MIN_MINUTES = 60 * 24 * 30  # a month


class PlanError(ValueError):
    """A plan that cannot run; `field` names the part at fault (plan[2].share)."""

    def __init__(self, message: str, field: str = "plan") -> None:
        super().__init__(message)
        self.field = field


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanError(f"{field} must be a number.", field)
    return float(value)


def _whole(value: Any, field: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise PlanError(f"{field} must be a whole number from 0 to {high:,}.", field)
    return value


def normalize_plan(raw: Any) -> list[dict[str, Any]]:
    """The plan as a list of {"share", "min_minutes", "min_samples"}; PlanError says what is wrong and where."""
    if not isinstance(raw, list) or not raw:
        raise PlanError("A plan is a list of challenger shares in percent, e.g. [5, 25, 50, 100], or of steps.")
    if len(raw) > MAX_STEPS:
        raise PlanError(f"A plan has at most {MAX_STEPS} steps.")
    steps: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"plan[{index}]"
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"share", "min_minutes", "min_samples"})
            if unknown:
                raise PlanError(
                    f"{where} has an unknown key {unknown[0]!r}; a step has share, min_minutes, min_samples.", where
                )
            if "share" not in item:
                raise PlanError(f"{where} needs a share (percent of traffic for the challenger).", f"{where}.share")
            share = _number(item["share"], f"{where}.share")
            min_minutes = _whole(item.get("min_minutes", 0), f"{where}.min_minutes", MAX_MIN_MINUTES)
            min_samples = _whole(item.get("min_samples", 0), f"{where}.min_samples", 10**12)
        else:
            share, min_minutes, min_samples = _number(item, where), 0, 0
        if not 0 < share <= 100:
            raise PlanError(f"{where}: a step's share must be above 0 and at most 100 percent (got {share:g}).", where)
        if steps and share <= steps[-1]["share"]:
            raise PlanError(
                f"{where}: shares must rise from step to step ({steps[-1]['share']:g} then {share:g}).", where
            )
        steps.append({"share": share, "min_minutes": min_minutes, "min_samples": min_samples})
    return steps


def plan_text(plan: list[dict[str, Any]]) -> str:
    """'5% → 25% → 50% → 100%' for pages and messages."""
    return " → ".join(f"{step['share']:g}%" for step in plan)
