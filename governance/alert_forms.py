"""Forms of the alert pages. They check the shape of what was typed; the services decide the rest (the address
policy, names that are taken) and their refusals land on the field they name. Secret fields never render a value:
not the stored one, and not what was typed into a form that came back with an error."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.alerting.addresses import MAX_URL_LENGTH
from governance.alerting.metrics import CATALOG, MAX_METRIC_LENGTH
from governance.models import AlertDestination, AlertRule, Comparison, DestinationKind, Severity
from governance.services.alert_destinations import MAX_SECRET, MIN_SIGNING_SECRET
from governance.services.alerts import MAX_WINDOW_MINUTES
from models_registry.models import RegisteredModel


class WriteOnlyInput(forms.TextInput):
    """A text box that is always empty when rendered: what it holds is a secret once typed."""

    def format_value(self, value: Any) -> None:
        return None


def _secret_widget() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"})


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    enabled = forms.BooleanField(required=False, initial=True)
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.order_by("name"),
        required=False,
        empty_label="every model",
        to_field_name="name",
    )
    version = forms.CharField(
        max_length=64, required=False, help_text="a version string of the model; empty: every version"
    )
    metric = forms.CharField(
        max_length=MAX_METRIC_LENGTH,
        widget=forms.TextInput(attrs={"list": "metric-catalog", "spellcheck": "false", "class": "mono"}),
        help_text="pick one from the list, or drift:<path> / fairness:<key> for any other number of a result",
    )
    feature = forms.CharField(
        max_length=200,
        required=False,
        help_text="for per-feature metrics: one feature or segment attribute; empty: any",
    )
    comparison = forms.ChoiceField(choices=Comparison.choices, initial=Comparison.GT)
    threshold = forms.FloatField()
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.WARNING)
    lookback_minutes = forms.IntegerField(
        min_value=1,
        max_value=MAX_WINDOW_MINUTES,
        initial=1440,
        label="Lookback (minutes)",
        help_text="only results about data this recent are judged",
    )
    cooldown_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_WINDOW_MINUTES,
        initial=60,
        label="Cool-down (minutes)",
        help_text="after firing, the rule stays quiet for the same version this long",
    )

    catalog = CATALOG

    @classmethod
    def for_rule(cls, rule: AlertRule) -> RuleForm:
        return cls(
            initial={
                "name": rule.name,
                "enabled": rule.enabled,
                "model": rule.model.name if rule.model is not None else None,
                "version": rule.version.version if rule.version is not None else "",
                "metric": rule.metric,
                "feature": rule.feature,
                "comparison": rule.comparison,
                "threshold": rule.threshold,
                "severity": rule.severity,
                "lookback_minutes": rule.lookback_minutes,
                "cooldown_minutes": rule.cooldown_minutes,
            }
        )


class DestinationForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=DestinationKind.choices)
    enabled = forms.BooleanField(required=False, initial=True)
    url = forms.CharField(
        max_length=MAX_URL_LENGTH,
        required=False,
        label="URL",
        widget=WriteOnlyInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "mono"}),
        help_text="https only. Slack and webhooks: required; PagerDuty: leave empty for the Events API v2 endpoint",
    )
    routing_key = forms.CharField(
        max_length=MAX_SECRET,
        required=False,
        widget=_secret_widget(),
        help_text="PagerDuty only: the integration's routing key",
    )
    signing_secret = forms.CharField(
        max_length=MAX_SECRET,
        required=False,
        widget=_secret_widget(),
        help_text=f"signed webhooks only: at least {MIN_SIGNING_SECRET} characters; the receiver checks "
        "X-Forge-Signature with it",
    )
    min_severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.INFO, label="Minimum severity")
    models = forms.ModelMultipleChoiceField(
        queryset=RegisteredModel.objects.order_by("name"),
        required=False,
        to_field_name="name",
        help_text="none selected: alerts of every model",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    def __init__(self, *args: Any, destination: AlertDestination | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.destination = destination
        for name in ("url", "routing_key", "signing_secret"):
            field = self.fields[name]
            assert isinstance(field, forms.CharField)
            field.strip = False  # a secret is taken as typed
        if destination is not None:
            del self.fields["kind"]  # a destination keeps its kind; delete it and add another
            keep = "leave empty to keep the saved one"
            self.fields["url"].help_text = f"saved: {destination.url_display} — {keep}"
            if destination.kind == DestinationKind.PAGERDUTY:
                self.fields["routing_key"].help_text = f"saved: {destination.secret_hint} — {keep}"
                del self.fields["signing_secret"]
            elif destination.kind == DestinationKind.WEBHOOK:
                self.fields["signing_secret"].help_text = f"saved — {keep}"
                del self.fields["routing_key"]
            else:
                del self.fields["routing_key"], self.fields["signing_secret"]

    @classmethod
    def for_destination(cls, destination: AlertDestination) -> DestinationForm:
        return cls(
            destination=destination,
            initial={
                "name": destination.name,
                "enabled": destination.enabled,
                "min_severity": destination.min_severity,
                "models": [m.name for m in destination.model_scope.all()],
            },
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = self.destination.kind if self.destination is not None else data.get("kind")
        creating = self.destination is None
        if creating and kind in (DestinationKind.SLACK, DestinationKind.WEBHOOK) and not data.get("url"):
            self.add_error("url", "Give the destination's URL.")
        if creating and kind == DestinationKind.PAGERDUTY and not data.get("routing_key"):
            self.add_error("routing_key", "Give the integration's routing key.")
        if creating and kind == DestinationKind.WEBHOOK and not data.get("signing_secret"):
            self.add_error("signing_secret", "Give a signing secret the receiver will check signatures with.")
        return data
