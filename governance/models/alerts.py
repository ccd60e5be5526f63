"""Alerts: rules that watch drift and fairness results, where alerts go, what fired, and every delivery attempt.

An Alert row is evidence (NIST AI RMF MANAGE 4.3: incidents are tracked and communicated): it names the model and
version, where it came from, the metric and its value against the threshold, the severity, when it fired and when it
was resolved, and its deliveries with each attempt. Alerts, deliveries and attempts are never deleted; a deleted
rule or destination leaves its name on them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class DestinationKind(models.TextChoices):
    SLACK = "slack", "Slack-compatible incoming webhook"
    PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
    WEBHOOK = "webhook", "Signed JSON webhook"


class Comparison(models.TextChoices):
    GT = "gt", ">"
    GTE = "gte", ">="
    LT = "lt", "<"
    LTE = "lte", "<="


class AlertDestination(models.Model):
    """Where alerts are sent. The URL and the secret are stored encrypted and never shown back; `url_display` and
    `secret_hint` are what a person sees."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=DestinationKind.choices)
    enabled = models.BooleanField(default=True)
    url_sealed = models.TextField(help_text="the URL, encrypted (Slack and webhook URLs carry a token)")
    url_display = models.CharField(max_length=300, help_text="scheme, host and port only")
    secret_sealed = models.TextField(blank=True, help_text="PagerDuty routing key or HMAC signing secret, encrypted")
    secret_hint = models.CharField(max_length=16, blank=True)
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    model_scope = models.ManyToManyField(
        "models_registry.RegisteredModel",
        blank=True,
        related_name="+",
        help_text="the models whose alerts come here; none means every model",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertRule(models.Model):
    """A threshold on a metric of a version's drift or fairness results (see governance.alerting.metrics)."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    model = models.ForeignKey(
        "models_registry.RegisteredModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_rules",
        help_text="none: every model",
    )
    version = models.ForeignKey(
        "models_registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_rules",
        help_text="none: every version of the model",
    )
    metric = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, blank=True, help_text="empty: any feature (or segment attribute)")
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField()
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    lookback_minutes = models.PositiveIntegerField(
        default=1440, help_text="only results about data up to this old are judged"
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="after it fires, the rule fires again for the same version only after this long"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def condition(self) -> str:
        feature = f"[{self.feature}]" if self.feature else "[any]" if self.is_per_feature else ""
        return f"{self.metric}{feature} {self.get_comparison_display()} {self.threshold:g}"

    @property
    def is_per_feature(self) -> bool:
        from governance.alerting.metrics import MetricError, metric_named

        try:
            return metric_named(self.metric).per_feature
        except MetricError:
            return False


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One occurrence of a condition, from firing to resolved."""

    model = models.ForeignKey("models_registry.RegisteredModel", on_delete=models.PROTECT, related_name="alerts")
    version = models.ForeignKey(
        "models_registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=100, blank=True, help_text="kept when the rule is deleted")
    source = models.CharField(max_length=32, db_index=True, help_text="rule, rollout, ...")
    metric = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, blank=True)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    comparison = models.CharField(max_length=8, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, db_index=True)
    message = models.TextField()
    dedup_key = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.FIRING, db_index=True)
    fired_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField(help_text="the last time the condition was seen to hold")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolve_value = models.FloatField(null=True, blank=True)
    resolve_message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            # One open alert per condition, held by the database: two evaluations at once cannot both fire it.
            models.UniqueConstraint(
                fields=["dedup_key"], condition=models.Q(status="firing"), name="one_firing_alert_per_dedup_key"
            )
        ]
        indexes = [
            models.Index(fields=["model", "-fired_at"], name="alert_model_fired"),
            models.Index(fields=["version", "-fired_at"], name="alert_version_fired"),
        ]

    def __str__(self) -> str:
        where = f"{self.model.name}:{self.version.version}" if self.version is not None else self.model.name
        return f"alert #{self.pk} {self.metric} on {where} ({self.status})"

    @property
    def comparison_symbol(self) -> str:
        return dict(Comparison.choices).get(self.comparison, self.comparison)


class AlertEvidence(models.Model):
    """The latest drift or fairness result recorded for a version, which rules are judged on (again by beat, so a
    rule created or changed later, or a cool-down that ended, is judged without waiting for the next result)."""

    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)  # drift | fairness
    result = models.JSONField()
    window_end = models.DateTimeField(help_text="the end of the data window the result is about")
    recorded_at = models.DateTimeField()
    job_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "kind"], name="one_alert_evidence_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} evidence for version {self.version_id}"


class DeliveryEvent(models.TextChoices):
    FIRE = "fire", "Fire"
    RESOLVE = "resolve", "Resolve"
    TEST = "test", "Test"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt or its next retry (next_attempt_at)
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


DELIVERY_FINAL = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


class AlertDelivery(models.Model):
    """One notification (a fire, a resolve or a test) to one destination, with its retries."""

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries")
    destination = models.ForeignKey(
        AlertDestination, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    destination_name = models.CharField(max_length=100)
    destination_kind = models.CharField(max_length=16, choices=DestinationKind.choices)
    event = models.CharField(max_length=16, choices=DeliveryEvent.choices)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    payload = models.JSONField(help_text="what is sent (a PagerDuty routing key is added when sending)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.event} to {self.destination_name}: {self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in DELIVERY_FINAL


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    RETRY = "retry", "Will retry"
    FAILED = "failed", "Failed"
    LOST = "lost", "Worker lost"


class DeliveryAttempt(models.Model):
    """One try of a delivery: when, how long, what came back, and when the next try is due."""

    delivery = models.ForeignKey(AlertDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    address = models.CharField(max_length=64, blank=True, help_text="the checked address the connection went to")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING)
    error = models.TextField(blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id} ({self.outcome})"
