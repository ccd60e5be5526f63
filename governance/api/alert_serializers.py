"""Alert API shapes: one input serializer per operation (destination creation is one per kind, so the schema says
which fields each kind needs), and outputs that never carry a secret."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from forge_site.api_inputs import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from governance.alerting.addresses import MAX_URL_LENGTH
from governance.alerting.metrics import MAX_METRIC_LENGTH, METRIC_PATTERN
from governance.models import (
    AlertDestination,
    AlertStatus,
    AttemptOutcome,
    Comparison,
    DeliveryEvent,
    DeliveryStatus,
    DestinationKind,
    Severity,
)
from governance.services.alert_destinations import MAX_SECRET, MIN_SIGNING_SECRET
from governance.services.alerts import MAX_WINDOW_MINUTES

NAME_PATTERN = r"^\S(?:.{0,98}\S)?$"
URL_PATTERN = r"^https?://\S+$"
SECRET_PATTERN = r"^[!-~]+$"


def _name_field(**kwargs: Any) -> StrictCharField:
    return StrictCharField(
        max_length=100,
        trim_whitespace=False,
        validators=[RegexValidator(NAME_PATTERN, "1 to 100 characters, without spaces at either end.")],
        **kwargs,
    )


def _url_field(**kwargs: Any) -> StrictCharField:
    return StrictCharField(
        max_length=MAX_URL_LENGTH,
        trim_whitespace=False,
        write_only=True,
        validators=[RegexValidator(URL_PATTERN, "An https URL.")],
        **kwargs,
    )


def _secret_field(min_length: int, help_text: str, **kwargs: Any) -> StrictCharField:
    return StrictCharField(
        min_length=min_length,
        max_length=MAX_SECRET,
        trim_whitespace=False,
        write_only=True,
        validators=[RegexValidator(SECRET_PATTERN, "Printable ASCII characters without spaces.")],
        help_text=help_text,
        **kwargs,
    )


def _models_field() -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=128),
        required=False,
        max_length=200,
        help_text="names of the models whose alerts this destination takes; empty or left out: every model",
    )


# --- destinations ---------------------------------------------------------------------------------------------------


class _DestinationCommonIn(StrictSerializer):
    name = _name_field(help_text="unique (ignoring case)")
    enabled = StrictBooleanField(required=False, default=True)
    min_severity = StrictChoiceField(choices=Severity.choices, required=False, default=Severity.INFO)
    models = _models_field()


class SlackDestinationIn(_DestinationCommonIn):
    kind = StrictChoiceField(choices=[DestinationKind.SLACK.value])
    url = _url_field(help_text="the incoming-webhook URL (write-only: it carries the token)")


class PagerDutyDestinationIn(_DestinationCommonIn):
    kind = StrictChoiceField(choices=[DestinationKind.PAGERDUTY.value])
    routing_key = _secret_field(1, "the integration's routing key (write-only)")
    url = _url_field(
        required=False,
        help_text="the Events API v2 endpoint; default https://events.pagerduty.com/v2/enqueue "
        "(https://events.eu.pagerduty.com/v2/enqueue for an EU account)",
    )


class WebhookDestinationIn(_DestinationCommonIn):
    kind = StrictChoiceField(choices=[DestinationKind.WEBHOOK.value])
    url = _url_field(help_text="the receiver's URL (write-only)")
    signing_secret = _secret_field(
        MIN_SIGNING_SECRET, "the HMAC-SHA256 key the receiver checks X-Forge-Signature with (write-only)"
    )


DESTINATION_INPUTS: dict[str, type[serializers.Serializer]] = {
    DestinationKind.SLACK: SlackDestinationIn,
    DestinationKind.PAGERDUTY: PagerDutyDestinationIn,
    DestinationKind.WEBHOOK: WebhookDestinationIn,
}

DestinationCreateIn = PolymorphicProxySerializer(
    component_name="DestinationCreateIn",
    serializers={str(kind): serializer for kind, serializer in DESTINATION_INPUTS.items()},
    resource_type_field_name="kind",
)


class DestinationUpdateIn(StrictSerializer):
    """Any of these; a secret or URL left out keeps its stored value. The kind cannot change."""

    read_only_fields = ("id", "kind", "secret_hint", "created_by", "created_at", "updated_at")

    name = _name_field(required=False)
    enabled = StrictBooleanField(required=False)
    min_severity = StrictChoiceField(choices=Severity.choices, required=False)
    models = _models_field()
    url = _url_field(required=False, help_text="a new URL (write-only)")
    routing_key = _secret_field(1, "PagerDuty only: a new routing key (write-only)", required=False)
    signing_secret = _secret_field(
        MIN_SIGNING_SECRET, "signed webhooks only: a new signing secret (write-only)", required=False
    )


class DestinationOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=DestinationKind.choices)
    enabled = serializers.BooleanField()
    url = serializers.CharField(source="url_display", help_text="scheme, host and port only: the rest is secret")
    secret_hint = serializers.CharField(
        help_text="PagerDuty: the routing key's last four characters; webhook: 'set'; Slack: empty"
    )
    min_severity = serializers.ChoiceField(choices=Severity.choices)
    models = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_models(self, destination: AlertDestination) -> list[str]:
        return sorted(m.name for m in destination.model_scope.all())


# --- rules ----------------------------------------------------------------------------------------------------------


class RuleIn(StrictSerializer):
    name = _name_field(help_text="unique (ignoring case)")
    enabled = StrictBooleanField(required=False, default=True)
    model = StrictCharField(
        max_length=128,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="a model's name; null or empty: every model",
    )
    version = StrictCharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="a version string of `model`; null or empty: every version",
    )
    metric = StrictCharField(
        max_length=MAX_METRIC_LENGTH,
        validators=[RegexValidator(METRIC_PATTERN, "A metric of the catalog, or drift:<path> / fairness:<key>.")],
        help_text="drift_share, feature_drift, feature_p_value, feature_drifted, prediction_drift, prediction_p_value, "
        "prediction_drifted, demographic_parity_ratio, demographic_parity_difference, equalized_odds_gap, tpr_gap, "
        "fpr_gap; or drift:<path> / fairness:<key> for any other number a result holds",
    )
    feature = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text="per-feature metrics: one feature (fairness: one segment attribute); empty or null: any",
    )
    comparison = StrictChoiceField(choices=Comparison.choices, required=False, default=Comparison.GT)
    threshold = StrictFloatField()
    severity = StrictChoiceField(choices=Severity.choices, required=False, default=Severity.WARNING)
    lookback_minutes = StrictIntegerField(min_value=1, max_value=MAX_WINDOW_MINUTES, required=False, default=1440)
    cooldown_minutes = StrictIntegerField(min_value=0, max_value=MAX_WINDOW_MINUTES, required=False, default=60)


class RuleUpdateIn(RuleIn):
    """Any field of a rule."""

    read_only_fields = ("id", "condition", "created_by", "created_at", "updated_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class RuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    model = serializers.CharField(source="model.name", allow_null=True, default=None)
    version = serializers.CharField(source="version.version", allow_null=True, default=None)
    metric = serializers.CharField()
    feature = serializers.CharField(help_text="empty: any")
    comparison = serializers.ChoiceField(choices=Comparison.choices)
    threshold = serializers.FloatField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    lookback_minutes = serializers.IntegerField()
    cooldown_minutes = serializers.IntegerField()
    condition = serializers.CharField(help_text="the rule in words, e.g. drift_share >= 0.5")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- alerts and deliveries ------------------------------------------------------------------------------------------


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField(allow_null=True)
    address = serializers.CharField(help_text="the checked address the connection went to")
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)
    error = serializers.CharField()
    response_excerpt = serializers.CharField()
    next_retry_at = serializers.DateTimeField(allow_null=True)


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    alert = serializers.IntegerField(source="alert_id", allow_null=True, help_text="null for a test")
    destination = serializers.IntegerField(source="destination_id", allow_null=True, help_text="null once deleted")
    destination_name = serializers.CharField()
    destination_kind = serializers.ChoiceField(choices=DestinationKind.choices)
    event = serializers.ChoiceField(choices=DeliveryEvent.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class DeliveryDetailOut(DeliveryOut):
    payload = serializers.JSONField(help_text="what is sent (without a PagerDuty routing key)")
    attempt_log = AttemptOut(source="attempt_rows", many=True)


class AlertOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    source = serializers.CharField(help_text="rule, rollout, ...")  # type: ignore[assignment]  # (as in JobOut)
    model = serializers.CharField(source="model.name")
    version = serializers.CharField(source="version.version", allow_null=True, default=None)
    rule = serializers.CharField(source="rule_name", help_text="the rule's name (kept when it is deleted)")
    rule_id = serializers.IntegerField(allow_null=True)
    metric = serializers.CharField()
    feature = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    comparison = serializers.CharField()
    message = serializers.CharField()
    dedup_key = serializers.CharField()
    fired_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolve_value = serializers.FloatField(allow_null=True)
    resolve_message = serializers.CharField()
    details = serializers.JSONField()


class AlertDetailOut(AlertOut):
    deliveries = DeliveryDetailOut(many=True)
