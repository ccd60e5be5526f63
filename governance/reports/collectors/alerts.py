"""Evidence from alerting: the rules watching the scope's versions, and every alert open during the period (fired,
resolved or still firing) with its deliveries. An alert is an incident identified and communicated (MANAGE 4.3); one
whose notification failed to reach any destination counts against, and one that reached none is a gap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q

from governance.models import Alert, AlertRule, AlertStatus
from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.base import clipped, evidence_item, iso
from governance.reports.scope import ReportScope

MAX_DELIVERIES_KEPT = 20  # per alert; a test or a flapping destination could add many


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _alert_values(alert: Alert) -> dict[str, Any]:
    deliveries = [
        {
            "destination": d.destination_name,
            "kind": d.destination_kind,
            "event": d.event,
            "status": d.status,
            "attempts": d.attempts,
            "last_status_code": d.last_status_code,
            "last_error": clipped(d.last_error, 200),
            "created_at": iso(d.created_at),
            "finished_at": iso(d.finished_at),
        }
        for d in sorted(alert.deliveries.all(), key=lambda d: (d.created_at, d.pk))
    ]
    return {
        "alert": alert.pk,
        "source": alert.source,
        "rule": alert.rule_name,
        "metric": alert.metric,
        "feature": alert.feature,
        "value": alert.value,
        "threshold": alert.threshold,
        "comparison": alert.comparison,
        "severity": alert.severity,
        "message": alert.message,
        "status": alert.status,
        "fired_at": iso(alert.fired_at),
        "resolved_at": iso(alert.resolved_at),
        "resolve_message": alert.resolve_message,
        "deliveries": deliveries[:MAX_DELIVERIES_KEPT],
        "deliveries_total": len(deliveries),
    }


def _alert_summary(alert: Alert, values: dict[str, Any]) -> str:
    where = f"{alert.model.name} {alert.version.version}" if alert.version is not None else alert.model.name
    condition = alert.metric + (f"[{alert.feature}]" if alert.feature else "")
    symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}.get(alert.comparison, alert.comparison or "vs")
    text = (
        f"{alert.severity} alert #{alert.pk} on {where} ({alert.rule_name or alert.source}): {condition} "
        f"{_figure(alert.value)} {symbol} {_figure(alert.threshold)}, fired {iso(alert.fired_at)}"
    )
    if alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None:
        text += f", resolved after {_duration(alert.resolved_at - alert.fired_at)}"
    else:
        text += ", still firing"
    fired = [d for d in values["deliveries"] if d["event"] == "fire"]
    if fired:
        text += "; sent to " + ", ".join(
            f"{d['destination']} ({d['status']}{', ' + str(d['attempts']) + ' attempts' if d['attempts'] > 1 else ''})"
            for d in fired[:4]
        )
    else:
        text += "; sent to no destination"
    return text


def _rule_item(rule: AlertRule) -> dict[str, Any]:
    scope = (
        f"{rule.version.model.name} {rule.version.version}"
        if rule.version is not None
        else (rule.model.name if rule.model is not None else "every model")
    )
    return evidence_item(
        kind=Kind.ALERTS,
        key=f"alert-rule:{rule.pk}",
        title=f"Alert rule {rule.name}",
        summary=(
            f"alert rule {rule.name} on {scope}: {rule.condition}, {rule.severity}, "
            f"{'enabled' if rule.enabled else 'DISABLED'}, cool-down {rule.cooldown_minutes} min"
        ),
        ok=rule.enabled,
        at=rule.updated_at,
        model=rule.model.name if rule.model is not None else "",
        version=rule.version.version if rule.version is not None else "",
        ref={"type": "alert_rule", "id": str(rule.pk), "path": ""},
        values={
            "name": rule.name,
            "condition": rule.condition,
            "metric": rule.metric,
            "feature": rule.feature,
            "comparison": rule.comparison,
            "threshold": rule.threshold,
            "severity": rule.severity,
            "enabled": rule.enabled,
            "scope": scope,
            "cooldown_minutes": rule.cooldown_minutes,
            "created_at": iso(rule.created_at),
        },
    )


def collect_alerts(scope: ReportScope) -> KindEvidence:
    """The rules that watch the scope (as they stand), and each alert open at some time in the period."""
    model_ids = scope.model_ids()
    version_ids = scope.version_ids()
    rules = (
        AlertRule.objects.filter(created_at__lte=scope.end)
        .filter(Q(model__isnull=True) | Q(model_id__in=model_ids))
        .filter(Q(version__isnull=True) | Q(version_id__in=version_ids))
        .select_related("model", "version", "version__model")
        .order_by("name")
    )
    items = [_rule_item(rule) for rule in rules]
    alerts = (
        Alert.objects.filter(model_id__in=model_ids, fired_at__lte=scope.end)
        .filter(Q(version__isnull=True) | Q(version_id__in=version_ids))
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=scope.start))
        .select_related("model", "version")
        .prefetch_related("deliveries")
        .order_by("fired_at", "pk")
    )
    gaps = []
    for alert in alerts:
        values = _alert_values(alert)
        failed = [d for d in values["deliveries"] if d["event"] == "fire" and d["status"] == "failed"]
        reached = [d for d in values["deliveries"] if d["event"] == "fire" and d["status"] == "delivered"]
        if not [d for d in values["deliveries"] if d["event"] == "fire"]:
            gaps.append(f"alert #{alert.pk} ({alert.metric}) reached no destination")
        items.append(
            evidence_item(
                kind=Kind.ALERTS,
                key=f"alert:{alert.pk}",
                title=f"Alert #{alert.pk}",
                summary=_alert_summary(alert, values),
                ok=not (failed and not reached),
                at=alert.fired_at,
                model=alert.model.name,
                version=alert.version.version if alert.version is not None else "",
                ref={"type": "alert", "id": str(alert.pk), "path": ""},
                values=values,
            )
        )
    return KindEvidence(Kind.ALERTS, tuple(items), tuple(gaps))
