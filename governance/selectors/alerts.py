"""Alert reads: the history (per model and version), one alert with its deliveries and their attempts, rules,
destinations, the delivery log, and the alerts section the monitoring page includes."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from governance.models import (
    Alert,
    AlertDelivery,
    AlertDestination,
    AlertRule,
    AlertStatus,
    DeliveryAttempt,
)
from models_registry.models import ModelVersion

ID_MAX = 2**63 - 1


def fits_id(value: int) -> bool:
    """Whether a number can be a row id (a larger one in a query is an error in the database, not a miss)."""
    return -ID_MAX <= value <= ID_MAX


def alert_list() -> QuerySet[Alert]:
    return Alert.objects.select_related("model", "version").order_by("-fired_at", "-pk")


def _deliveries_with_attempts() -> Prefetch:
    return Prefetch(
        "deliveries",
        queryset=AlertDelivery.objects.select_related("created_by")
        .prefetch_related(Prefetch("attempt_rows", queryset=DeliveryAttempt.objects.order_by("number")))
        .order_by("created_at", "pk"),
    )


def alert_get(alert_id: int) -> Alert | None:
    if not fits_id(alert_id):
        return None
    return alert_list().prefetch_related(_deliveries_with_attempts()).filter(pk=alert_id).first()


def rule_list() -> QuerySet[AlertRule]:
    return (
        AlertRule.objects.select_related("model", "version", "created_by")
        .annotate(firing=Count("alerts", filter=Q(alerts__status=AlertStatus.FIRING)))
        .order_by("name")
    )


def rule_get(rule_id: int) -> AlertRule | None:
    if not fits_id(rule_id):
        return None
    return rule_list().filter(pk=rule_id).first()


def destination_list() -> QuerySet[AlertDestination]:
    return AlertDestination.objects.select_related("created_by").prefetch_related("model_scope").order_by("name")


def destination_get(destination_id: int) -> AlertDestination | None:
    if not fits_id(destination_id):
        return None
    return destination_list().filter(pk=destination_id).first()


def delivery_list() -> QuerySet[AlertDelivery]:
    return AlertDelivery.objects.select_related("created_by").order_by("-created_at", "-pk")


def delivery_get(delivery_id: int) -> AlertDelivery | None:
    if not fits_id(delivery_id):
        return None
    attempts = Prefetch("attempt_rows", queryset=DeliveryAttempt.objects.order_by("number"))
    return delivery_list().prefetch_related(attempts).filter(pk=delivery_id).first()


def destination_deliveries(destination: AlertDestination, *, limit: int = 20) -> list[AlertDelivery]:
    attempts = Prefetch("attempt_rows", queryset=DeliveryAttempt.objects.order_by("number"))
    return list(
        delivery_list().filter(destination=destination).select_related("alert").prefetch_related(attempts)[:limit]
    )


def alerts_section(*, version: ModelVersion, limit: int = 10) -> dict[str, Any]:
    """What the monitoring page's alerts section shows for a version: its firing alerts, its recent history, and
    the rules that watch it (templates/governance/inc/alerts_section.html)."""
    alerts = alert_list().filter(version=version)
    rules = (
        rule_list()
        .filter(Q(model__isnull=True) | Q(model_id=version.model_id))
        .filter(Q(version__isnull=True) | Q(version_id=version.pk))
    )
    return {
        "version": version,
        "firing": list(alerts.filter(status=AlertStatus.FIRING)[:limit]),
        "recent": list(alerts[:limit]),
        "total": alerts.count(),
        "rules": list(rules),
    }
