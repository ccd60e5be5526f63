"""Evidence from champion/challenger rollouts, read from the audit trail only (governance never imports `rollouts`):
each rollout with events in the period, its plan, the traffic share of each step and how it ended; and each rollback,
automatic (a guardrail, with its values) or by a person, with why.

Rollout events (object type `rollouts.rollout`) name the model, the champion and the challenger in their
after-payload (INTERFACES.md), so a report filters them by model; promotion requests and decisions are cited by the
approvals collector.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.utils import timezone

from forge_site.models import AuditEvent
from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.audit import event_row, scope_events
from governance.reports.collectors.base import clipped, evidence_item, iso
from governance.reports.scope import ReportScope

ROLLOUT_TYPE = "rollouts.rollout"
# Actions that change how much traffic the challenger takes: the share after each (percent).
SHARE_AFTER = {
    "rollout.start": lambda after: after.get("share"),
    "rollout.advance": lambda after: after.get("share"),
    "rollout.resume": lambda after: after.get("share"),
    "rollout.pause": lambda after: 0.0,
    "rollout.rollback": lambda after: 0.0,
    "rollout.abort": lambda after: 0.0,
}
PROMOTION_ACTIONS = ("promotion.request", "promotion.approve", "promotion.reject")
ENDINGS = {"rollout.rollback": "rolled back", "rollout.abort": "aborted"}
MAX_STEPS_KEPT = 50  # a rollout paused and resumed more often than this keeps its first 50 changes


def rollouts_recorded() -> bool:
    """Whether this Forge runs rollouts (the app above governance), asked of the app registry, not by importing it."""
    return apps.is_installed("rollouts")


def _rollout_events(scope: ReportScope) -> dict[str, list[AuditEvent]]:
    by_rollout: dict[str, list[AuditEvent]] = {}
    for event in scope_events(scope).filter(object_type=ROLLOUT_TYPE).order_by("seq"):
        by_rollout.setdefault(event.object_id, []).append(event)
    return by_rollout


def _promotions(scope: ReportScope) -> dict[str, list[AuditEvent]]:
    """Promotion requests and decisions by rollout id (an approval ends its rollout at the whole traffic)."""
    by_rollout: dict[str, list[AuditEvent]] = {}
    events = scope_events(scope).filter(action__in=PROMOTION_ACTIONS).order_by("seq")
    for event in events:
        rollout_id = (event.after or {}).get("rollout")
        if rollout_id is not None:
            by_rollout.setdefault(str(rollout_id), []).append(event)
    return by_rollout


def _share(value: Any) -> str:
    return f"{value:g}%" if isinstance(value, int | float) else "?"


def _rollout_values(
    rollout_id: str, events: list[AuditEvent], promotions: list[AuditEvent], scope: ReportScope
) -> dict[str, Any]:
    promotion = next((e for e in promotions if e.action == "promotion.approve"), None)
    first = events[0].after or {}
    created = next((e for e in events if e.action == "rollout.create"), None)
    steps = []
    for event in events:
        if event.action in SHARE_AFTER:
            after = event.after or {}
            steps.append(
                {
                    "at": iso(event.at),
                    "action": event.action,
                    "share": SHARE_AFTER[event.action](after),
                    "step": after.get("step"),
                    "by": event.actor_label,
                    "override_reason": after.get("override_reason"),
                }
            )
    if promotion is not None:
        steps.append(
            {"at": iso(promotion.at), "action": "promotion.approve", "share": 100.0, "step": None, "by": ""}
            | {"by": promotion.actor_label, "override_reason": (promotion.after or {}).get("override_reason")}
        )
    last = events[-1]
    ended = "promoted" if promotion is not None else ENDINGS.get(last.action)
    return {
        "rollout": rollout_id,
        "model": first.get("model"),
        "champion": first.get("champion"),
        "challenger": first.get("challenger"),
        "plan": (created.after or {}).get("plan") if created else None,
        "advance_mode": (created.after or {}).get("advance_mode") if created else None,
        "guardrails": (created.after or {}).get("guardrails") if created else None,
        "primary_metric": (created.after or {}).get("primary_metric") if created else None,
        "created_by": created.actor_label if created else "",
        "steps": steps[:MAX_STEPS_KEPT],
        "overrides": [s for s in steps if s.get("override_reason") and s["action"] == "rollout.advance"],
        "promotion_override": (promotion.after or {}).get("override_reason") if promotion is not None else None,
        "breaches": sum(1 for e in events if e.action == "rollout.guardrail_breach"),
        "ended": ended,
        "ended_at": iso(promotion.at if promotion is not None else last.at) if ended else None,
        # a rollout still open holds its last share until the period ends (or until now, for a period not over)
        "open_until": None if ended else iso(min(scope.end, timezone.now())),
        "promotion": [
            {"action": e.action, "by": e.actor_label, "at": iso(e.at), "comment": (e.after or {}).get("comment")}
            for e in promotions
        ],
        "events": [event.seq for event in events],
    }


def _rollout_summary(values: dict[str, Any]) -> str:
    head = (
        f"rollout #{values['rollout']} of {values['model']}: challenger {values['challenger']} against champion "
        f"{values['champion']}"
    )
    if values["created_by"]:
        head += f", created by {values['created_by']}"
    shares = [s for s in values["steps"] if s["action"] in ("rollout.start", "rollout.advance", "rollout.resume")]
    if shares:
        head += "; traffic " + " → ".join(_share(s["share"]) for s in shares)
    if values["overrides"]:
        head += f"; {len(values['overrides'])} step(s) advanced with an override ("
        head += "; ".join(clipped(str(s["override_reason"]), 80) for s in values["overrides"][:2]) + ")"
    if values["breaches"]:
        head += f"; {values['breaches']} guardrail breach{'es' if values['breaches'] != 1 else ''}"
    last_promotion = values["promotion"][-1] if values["promotion"] else None
    if not values["ended"] and last_promotion is not None and last_promotion["action"] == "promotion.request":
        head += f"; promotion asked for by {last_promotion['by']}, awaiting a manager's decision"
    elif not values["ended"] and last_promotion is not None and last_promotion["action"] == "promotion.reject":
        head += f"; promotion rejected by {last_promotion['by']}"
    if values["ended"] == "promoted" and values["promotion_override"]:
        return head + f"; promoted over unmet requirements, override: {clipped(str(values['promotion_override']), 80)}"
    return head + (f"; {values['ended']}" if values["ended"] else "; still open at the end of the period")


def _guardrail_text(guardrail: dict[str, Any] | None) -> str:
    verdicts = (guardrail or {}).get("verdicts") or []
    return "; ".join(
        f"{v.get('name')} {v.get('value'):.3g} against {v.get('threshold'):.3g}"
        if isinstance(v.get("value"), int | float) and isinstance(v.get("threshold"), int | float)
        else str(v.get("name"))
        for v in verdicts
    )


def collect_rollouts(scope: ReportScope) -> KindEvidence:
    """One item per rollout with events in the period: plan, traffic per step, overrides, breaches, how it ended."""
    promotions = _promotions(scope)
    items = []
    for rollout_id, events in _rollout_events(scope).items():
        values = _rollout_values(rollout_id, events, promotions.get(rollout_id, []), scope)
        items.append(
            evidence_item(
                kind=Kind.ROLLOUTS,
                key=f"rollout:{rollout_id}",
                title=f"Rollout #{rollout_id} of {values['model']}",
                summary=_rollout_summary(values),
                ok=True,
                at=events[-1].at,
                model=str(values["model"] or ""),
                version=str(values["challenger"] or ""),
                ref={"type": "audit", "id": rollout_id, "path": f"/audit/?object_id={rollout_id}"},
                values=values,
            )
        )
    return KindEvidence(Kind.ROLLOUTS, tuple(items))


def collect_rollbacks(scope: ReportScope) -> KindEvidence:
    """Every rollback in the period: automatic on a guardrail breach (which guardrail, its value and limit) or by a
    person, with the reason given. A rollback is the system failing safely: it supports the outcome."""
    items = []
    for event in scope_events(scope).filter(object_type=ROLLOUT_TYPE, action="rollout.rollback").order_by("seq"):
        after = event.after or {}
        how = "automatically" if after.get("automatic") else f"by {event.actor_label}"
        summary = (
            f"rollout #{after.get('rollout', event.object_id)} of {after.get('model')} rolled back {how} at "
            f"{_share((event.before or {}).get('share'))} of traffic: challenger {after.get('challenger')} out, "
            f"champion {after.get('champion')} serves"
        )
        breached = _guardrail_text(after.get("guardrail"))
        if breached:
            summary += f"; guardrail {breached}"
        summary += f"; reason: {clipped(str(after.get('reason') or 'none given'), 200)}"
        items.append(
            evidence_item(
                kind=Kind.ROLLBACKS,
                key=f"audit:{event.seq}",
                title=f"Rollback of rollout #{event.object_id}",
                summary=summary,
                ok=True,
                at=event.at,
                model=str(after.get("model") or ""),
                version=str(after.get("challenger") or ""),
                ref={"type": "audit", "id": str(event.seq), "path": f"/audit/?object_id={event.object_id}"},
                values=event_row(event) | {"automatic": bool(after.get("automatic")), "before": event.before},
            )
        )
    return KindEvidence(Kind.ROLLBACKS, tuple(items))
