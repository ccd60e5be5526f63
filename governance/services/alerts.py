"""Alerts: raise and resolve them (audited, delivered on commit by the workers), manage rules, and judge rules on
drift and fairness results.

- `alert_raise` is the one way an alert fires: rules call it, and so do rollout guardrails (source "rollout"). It
  keeps one open alert per dedup key, and after an alert fired it stays quiet for that key for the cool-down.
- `alert_resolve` closes the open alert of a key; destinations that were told it fired are told it is resolved
  (PagerDuty gets a `resolve` event with the same dedup key).
- `alert_rules_evaluate` is the hook the monitoring side calls when it records a drift or fairness result; beat
  runs `alert_rules_evaluate_due` to judge rules again on the latest results (a rule created after a result, a
  cool-down that ended while the condition still holds).

Nothing here makes a network call: deliveries are rows, sent by a task on the `default` queue after the
transaction commits, so a destination that hangs or fails never slows the caller.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from forge_site.audit import audit_record
from governance.alerting.metrics import (
    COMPARISONS,
    DRIFT,
    FAIRNESS,
    KINDS,
    MAX_METRIC_LENGTH,
    Metric,
    MetricError,
    breaches,
    metric_named,
    metric_values,
    worst,
)
from governance.models import Alert, AlertEvidence, AlertRule, AlertStatus, DeliveryEvent, Severity
from governance.services.alert_delivery import deliveries_create
from governance.services.alert_destinations import AlertConfigError
from models_registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)

MAX_WINDOW_MINUTES = 30 * 24 * 60
EVALUATE_TASK = "governance.evaluate_alert_rules"
SOURCE_RULE = "rule"
MAX_LISTED_BREACHES = 20


# --- raising and resolving ------------------------------------------------------------------------------------------


def _payload(alert: Alert, *, value: float | None) -> dict[str, Any]:
    return {
        "rule": alert.rule_name or None,
        "metric": alert.metric,
        "feature": alert.feature or None,
        "value": value,
        "threshold": alert.threshold,
        "severity": alert.severity,
        "source": alert.source,
        "model": alert.model.name,
        "version": alert.version.version if alert.version is not None else None,
        "dedup_key": alert.dedup_key,
        "message": alert.message,
    }


def _finite(value: float | None, field: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"alert {field} must be a finite number, got {value!r}")
    return number


def alert_raise(
    *,
    model: RegisteredModel,
    version: ModelVersion | None = None,
    source: str,
    metric: str,
    feature: str | None,
    value: float | None,
    threshold: float | None,
    severity: str,
    message: str,
    dedup_key: str,
    comparison: str = "",
    rule: AlertRule | None = None,
    cooldown_s: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert | None:
    """Fire an alert, unless one is already open for `dedup_key` (its last-seen time and value are updated) or one
    fired for it less than the cool-down ago (the rule's, else `cooldown_s`, else FORGE_ALERT_DEFAULT_COOLDOWN_S).
    Returns the new alert, or None when nothing fired. Records `alert.fire` and queues a delivery to every enabled
    destination that takes this model and severity; they are sent after the caller's transaction commits."""
    if severity not in Severity.values:
        raise ValueError(f"severity must be one of {', '.join(Severity.values)}, got {severity!r}")
    if not dedup_key or len(dedup_key) > 255:
        raise ValueError("dedup_key must be 1 to 255 characters")
    if not source or len(source) > 32:
        raise ValueError("source must be 1 to 32 characters")
    if version is not None and version.model_id != model.pk:
        raise ValueError(f"version {version} is not a version of {model}")
    value, threshold = _finite(value, "value"), _finite(threshold, "threshold")
    now = now or timezone.now()
    if cooldown_s is None:
        cooldown_s = rule.cooldown_minutes * 60 if rule is not None else settings.FORGE_ALERT_DEFAULT_COOLDOWN_S
    with transaction.atomic():
        open_alert = Alert.objects.select_for_update().filter(dedup_key=dedup_key, status=AlertStatus.FIRING).first()
        if open_alert is not None:
            Alert.objects.filter(pk=open_alert.pk).update(
                last_seen_at=now, details={**open_alert.details, "last_value": value}
            )
            return None
        last = Alert.objects.filter(dedup_key=dedup_key).order_by("-fired_at").only("fired_at").first()
        if last is not None and cooldown_s > 0 and last.fired_at > now - timedelta(seconds=cooldown_s):
            return None
        alert = Alert(
            model=model,
            version=version,
            rule=rule,
            rule_name=rule.name if rule is not None else "",
            source=source,
            metric=metric[:MAX_METRIC_LENGTH],
            feature=(feature or "")[:200],
            value=value,
            threshold=threshold,
            comparison=comparison,
            severity=severity,
            message=message,
            dedup_key=dedup_key,
            fired_at=now,
            last_seen_at=now,
            details=details or {},
        )
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:  # another evaluation fired the same key a moment ago; its alert stands
            return None
        audit_record(actor=None, action="alert.fire", obj=alert, after=_payload(alert, value=value))
        deliveries_create(alert=alert, event=DeliveryEvent.FIRE)
    return alert


def alert_resolve(
    *, dedup_key: str, value: float | None = None, message: str = "", now: datetime | None = None
) -> Alert | None:
    """Resolve the open alert of `dedup_key` (None when there is none). Records `alert.resolve` and tells the
    destinations that were told it fired."""
    now = now or timezone.now()
    value = _finite(value, "value")
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("model", "version")
            .filter(dedup_key=dedup_key, status=AlertStatus.FIRING)
            .first()
        )
        if alert is None:
            return None
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = now
        alert.resolve_value = value
        alert.resolve_message = message
        alert.save(update_fields=["status", "resolved_at", "resolve_value", "resolve_message"])
        after = {**_payload(alert, value=value), "fired_at": alert.fired_at, "resolve_message": message}
        audit_record(actor=None, action="alert.resolve", obj=alert, after=after)
        deliveries_create(alert=alert, event=DeliveryEvent.RESOLVE)
    return alert


# --- rules ----------------------------------------------------------------------------------------------------------


def rule_dedup_key(rule: AlertRule, version: ModelVersion) -> str:
    """One open alert per rule and version (a rule on every model fires separately for each version)."""
    return f"rule:{rule.pk}:version:{version.pk}"


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "model": rule.model.name if rule.model is not None else None,
        "version": rule.version.version if rule.version is not None else None,
        "metric": rule.metric,
        "feature": rule.feature or None,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "severity": rule.severity,
        "lookback_minutes": rule.lookback_minutes,
        "cooldown_minutes": rule.cooldown_minutes,
    }


def _validate_rule(rule: AlertRule) -> None:
    if not rule.name or not rule.name.strip() or len(rule.name) > 100 or rule.name != rule.name.strip():
        raise AlertConfigError("The name must be 1 to 100 characters, without spaces at either end.", field="name")
    clash = AlertRule.objects.filter(name__iexact=rule.name).exclude(pk=rule.pk)
    if clash.exists():
        raise AlertConfigError(f"A rule named {rule.name!r} exists.", field="name", code="duplicate", status=409)
    try:
        metric = metric_named(rule.metric)
    except MetricError as exc:
        raise AlertConfigError(str(exc), field="metric") from exc
    if rule.feature and not metric.per_feature:
        raise AlertConfigError(
            f"{rule.metric} is one number for the whole result; leave feature empty.",
            field="feature",
            code="not_applicable",
            status=422,
        )
    if len(rule.feature) > 200:
        raise AlertConfigError("feature is at most 200 characters.", field="feature")
    if rule.comparison not in COMPARISONS:
        raise AlertConfigError(f"comparison must be one of {', '.join(COMPARISONS)}.", field="comparison")
    if not isinstance(rule.threshold, int | float) or not math.isfinite(rule.threshold):
        raise AlertConfigError("threshold must be a finite number.", field="threshold")
    if rule.severity not in Severity.values:
        raise AlertConfigError(f"severity must be one of {', '.join(Severity.values)}.", field="severity")
    if not 1 <= rule.lookback_minutes <= MAX_WINDOW_MINUTES:
        raise AlertConfigError(f"lookback_minutes must be 1 to {MAX_WINDOW_MINUTES}.", field="lookback_minutes")
    if not 0 <= rule.cooldown_minutes <= MAX_WINDOW_MINUTES:
        raise AlertConfigError(f"cooldown_minutes must be 0 to {MAX_WINDOW_MINUTES}.", field="cooldown_minutes")
    if rule.version_id is not None and rule.model_id is None:
        raise AlertConfigError("A rule on one version names its model too.", field="version", status=422)
    if rule.version is not None and rule.version.model_id != rule.model_id:
        raise AlertConfigError(
            f"{rule.version.version} is not a version of {rule.model}.", field="version", code="not_found", status=422
        )


RULE_FIELDS = (
    "name",
    "enabled",
    "model",
    "version",
    "metric",
    "feature",
    "comparison",
    "threshold",
    "severity",
    "lookback_minutes",
    "cooldown_minutes",
)


def alert_rule_create(
    *,
    actor: Any,
    name: str,
    metric: str,
    threshold: float,
    comparison: str = "gt",
    severity: str = Severity.WARNING,
    model: RegisteredModel | None = None,
    version: ModelVersion | None = None,
    feature: str = "",
    lookback_minutes: int = 1440,
    cooldown_minutes: int = 60,
    enabled: bool = True,
) -> AlertRule:
    """Add a rule; it is judged on the latest results at once (on a worker, after commit) and on every new one."""
    rule = AlertRule(
        name=name,
        enabled=enabled,
        model=model,
        version=version,
        metric=metric,
        feature=feature or "",
        comparison=comparison,
        threshold=threshold,
        severity=severity,
        lookback_minutes=lookback_minutes,
        cooldown_minutes=cooldown_minutes,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _validate_rule(rule)
    try:
        with transaction.atomic():
            rule.save()
            audit_record(actor=actor, action="alert_rule.create", obj=rule, after=_rule_snapshot(rule))
            transaction.on_commit(lambda: _evaluate_later(rule.pk))
    except IntegrityError as exc:
        raise AlertConfigError(f"A rule named {name!r} exists.", field="name", code="duplicate", status=409) from exc
    return rule


def alert_rule_update(*, rule: AlertRule, actor: Any, **changes: Any) -> AlertRule:
    """Change the given fields. A rule switched off resolves its open alerts; a changed rule is judged again."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        locked = AlertRule.objects.select_for_update(of=("self",)).select_related("model", "version").get(pk=rule.pk)
        before = _rule_snapshot(locked)
        for field, value in changes.items():
            setattr(locked, field, "" if field == "feature" and value is None else value)
        moved = "model" in changes and "version" not in changes and locked.version is not None
        if moved and locked.version is not None and locked.version.model_id != locked.model_id:
            locked.version = None  # the version belonged to the model the rule no longer names
        _validate_rule(locked)
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            raise AlertConfigError(
                f"A rule named {locked.name!r} exists.", field="name", code="duplicate", status=409
            ) from exc
        audit_record(actor=actor, action="alert_rule.update", obj=locked, before=before, after=_rule_snapshot(locked))
        if not locked.enabled:
            _resolve_rule_alerts(locked, "the rule was switched off")
        else:
            transaction.on_commit(lambda: _evaluate_later(locked.pk))
    return locked


def alert_rule_delete(*, rule: AlertRule, actor: Any) -> None:
    """Delete a rule; its open alerts are resolved (their rows keep the rule's name)."""
    with transaction.atomic():
        locked = AlertRule.objects.select_for_update(of=("self",)).select_related("model", "version").get(pk=rule.pk)
        before = _rule_snapshot(locked)
        _resolve_rule_alerts(locked, "the rule was deleted")
        audit_record(actor=actor, action="alert_rule.delete", obj=locked, before=before)
        locked.delete()


def _resolve_rule_alerts(rule: AlertRule, why: str) -> None:
    keys = Alert.objects.filter(rule=rule, status=AlertStatus.FIRING).values_list("dedup_key", flat=True)
    for key in list(keys):
        alert_resolve(dedup_key=key, message=why)


def _evaluate_later(rule_id: int) -> None:
    from forge_site.celery import app

    try:
        app.send_task(EVALUATE_TASK, kwargs={"rule_id": rule_id}, queue="default", retry=False)
    except Exception:  # broker down: beat judges every rule within FORGE_ALERT_EVALUATE_EVERY_S anyway
        logger.warning("could not queue the evaluation of alert rule %s; beat will judge it", rule_id, exc_info=True)


# --- judging rules on results ---------------------------------------------------------------------------------------


def _rules_for(version: ModelVersion, kind: str | None = None) -> list[AlertRule]:
    rules = AlertRule.objects.filter(enabled=True).filter(
        Q(model__isnull=True) | Q(model_id=version.model_id), Q(version__isnull=True) | Q(version_id=version.pk)
    )
    chosen = []
    for rule in rules:
        try:
            if kind is None or metric_named(rule.metric).kind == kind:
                chosen.append(rule)
        except MetricError:
            continue
    return chosen


def _message(rule: AlertRule, metric: Metric, breaching: list[tuple[str, float]], value: float, feature: str) -> str:
    symbol = COMPARISONS[rule.comparison][0]
    where = f" of {feature}" if feature else ""
    text = f"{metric.label}{where} is {value:.4g} ({symbol} {rule.threshold:g})"
    if len(breaching) > 1:
        others = ", ".join(name for name, _ in breaching[:5])
        more = f" and {len(breaching) - 5} more" if len(breaching) > 5 else ""
        text += f"; {len(breaching)} breach: {others}{more}"
    return f"{rule.name}: {text}"


def _judge(
    rule: AlertRule,
    version: ModelVersion,
    *,
    kind: str,
    result: Any,
    window_end: datetime,
    job_id: str,
    now: datetime,
) -> Alert | None:
    """Fire or resolve the rule's alert for this version on one result (nothing when the result is older than the
    rule's lookback, or holds no value of its metric)."""
    if window_end < now - timedelta(minutes=rule.lookback_minutes):
        return None
    metric = metric_named(rule.metric)
    pairs = metric_values(metric, result, rule.feature)
    if not pairs:
        return None
    key = rule_dedup_key(rule, version)
    breaching = [pair for pair in pairs if breaches(rule.comparison, pair[1], rule.threshold)]
    if not breaching:
        feature, value = worst(pairs, rule.comparison)
        where = f" of {feature}" if feature else ""
        alert_resolve(
            dedup_key=key,
            value=value,
            message=f"cleared: {metric.label}{where} is {value:.4g}",
            now=now,
        )
        return None
    feature, value = worst(breaching, rule.comparison)
    details = {
        "kind": kind,
        "window_end": window_end.isoformat(),
        "job_id": job_id or None,
        "breaching": [{"feature": name, "value": number} for name, number in breaching[:MAX_LISTED_BREACHES]],
        "breaching_count": len(breaching),
    }
    return alert_raise(
        model=version.model,
        version=version,
        source=SOURCE_RULE,
        metric=rule.metric,
        feature=feature,
        value=value,
        threshold=rule.threshold,
        comparison=rule.comparison,
        severity=rule.severity,
        message=_message(rule, metric, breaching, value, feature),
        dedup_key=key,
        rule=rule,
        details=details,
        now=now,
    )


def _judge_safely(rule: AlertRule, version: ModelVersion, **kwargs: Any) -> Alert | None:
    """One rule's judgement in its own savepoint: a bad result or rule never breaks the caller's transaction."""
    try:
        with transaction.atomic():
            return _judge(rule, version, **kwargs)
    except Exception:
        logger.exception("alert rule %s could not be judged for version %s", rule.pk, version.pk)
        return None


def _json_safe(value: Any) -> Any:
    """The result as JSON can hold it: NaN and infinities (which a JSON column refuses) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def alert_rules_evaluate(
    *,
    version: ModelVersion,
    kind: str,
    result: dict[str, Any] | list[Any],
    window_end: datetime | None = None,
    job_id: str = "",
    now: datetime | None = None,
) -> list[Alert]:
    """The hook for recorded results: keep `result` as the version's latest `kind` evidence ("drift": the drift job
    result shape; "fairness": fairness reports) and judge every enabled rule that applies to the version on it.
    `window_end` is the end of the data window the result is about (now when None). Safe to call inside the
    caller's transaction: alert rows and audit events join it, deliveries are sent after it commits, and a rule
    that cannot be judged is logged and skipped, never raised. Returns the alerts that fired."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    now = now or timezone.now()
    window_end = window_end or now
    try:
        with transaction.atomic():
            AlertEvidence.objects.update_or_create(
                version=version,
                kind=kind,
                defaults={
                    "result": _json_safe(result),
                    "window_end": window_end,
                    "recorded_at": now,
                    "job_id": str(job_id or "")[:64],
                },
            )
    except Exception:  # the rules are still judged on this result; only beat's second look at it is lost
        logger.exception("could not keep the %s result of version %s for alert rules", kind, version.pk)
    fired = []
    for rule in _rules_for(version, kind):
        alert = _judge_safely(rule, version, kind=kind, result=result, window_end=window_end, job_id=job_id, now=now)
        if alert is not None:
            fired.append(alert)
    return fired


def _window_end(job: Any) -> datetime | None:
    window = (getattr(job, "params", None) or {}).get("window") or (getattr(job, "result", None) or {}).get("window")
    try:
        end = datetime.fromisoformat(str(window["end"])) if isinstance(window, dict) and window.get("end") else None
    except ValueError:
        return None
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return end


def alert_rules_monitor_hook(*, monitor: Any, job: Any) -> list[Alert]:
    """FORGE_MONITOR_RESULT_HOOKS entry: a monitor's drift job finished. Judges the drift rules on its result and,
    when the result carries `fairness` (`{"attributes": [...]}`), the fairness rules on that."""
    result = getattr(job, "result", None)
    if not isinstance(result, dict):
        return []
    version = monitor.version
    common = {"version": version, "window_end": _window_end(job), "job_id": str(job.pk)}
    with transaction.atomic():
        fired = alert_rules_evaluate(kind=DRIFT, result=result, **common)
        fairness = result.get("fairness")
        if isinstance(fairness, dict | list):
            fired += alert_rules_evaluate(kind=FAIRNESS, result=fairness, **common)
    return fired


def alert_rules_evaluate_due(*, now: datetime | None = None, rule_id: int | None = None) -> int:
    """Beat's pass: judge enabled rules (or one) on each version's latest evidence. Returns how many fired."""
    now = now or timezone.now()
    rules = AlertRule.objects.filter(enabled=True)
    if rule_id is not None:
        rules = rules.filter(pk=rule_id)
    fired = 0
    for rule in rules:
        try:
            kind = metric_named(rule.metric).kind
        except MetricError:
            continue
        evidence = AlertEvidence.objects.filter(
            kind=kind, window_end__gte=now - timedelta(minutes=rule.lookback_minutes)
        ).select_related("version__model")
        if rule.version_id is not None:
            evidence = evidence.filter(version_id=rule.version_id)
        elif rule.model_id is not None:
            evidence = evidence.filter(version__model_id=rule.model_id)
        for row in evidence:
            alert = _judge_safely(
                rule, row.version, kind=kind, result=row.result, window_end=row.window_end, job_id=row.job_id, now=now
            )
            fired += alert is not None
    return fired
