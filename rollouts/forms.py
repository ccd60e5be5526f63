"""Console forms for rollouts: shape and parsing only; the services decide."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from models_registry.models import RegisteredModel
from rollouts.models import AdvanceMode


def _parse_plan(text: str) -> Any:
    """'5, 25, 50, 100' or JSON (a list of shares or of step objects)."""
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"The plan is not valid JSON: {exc.msg}.") from exc
    parts = [part for part in text.replace(";", ",").split(",") if part.strip()]
    try:
        return [float(part.strip().rstrip("%")) for part in parts]
    except ValueError as exc:
        raise forms.ValidationError("Write the plan as shares in percent, e.g. 5, 25, 50, 100, or as JSON.") from exc


class RolloutCreateForm(forms.Form):
    model = forms.ChoiceField(label="Model")
    challenger = forms.CharField(max_length=64, label="Challenger version", help_text="a ready version of the model")
    plan = forms.CharField(
        initial="5, 25, 50, 100",
        help_text="Challenger shares in percent, or JSON steps with minimums: "
        '[{"share": 5, "min_minutes": 30, "min_samples": 1000}, …]',
    )
    advance_mode = forms.ChoiceField(choices=AdvanceMode.choices, initial=AdvanceMode.MANUAL, label="Advance")
    unit_key = forms.CharField(max_length=64, initial="user", label="Unit", help_text="what a unit id names")
    primary_metric = forms.ChoiceField(
        choices=[("success", "Success rate of outcomes"), ("value", "Mean value of outcomes")], label="Primary metric"
    )
    lower_is_better = forms.BooleanField(required=False, label="Lower is better")
    guardrails = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON; omitted keys take the defaults, e.g. {"max_p95_latency_ratio": 1.3, "min_samples": 500}',
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = RegisteredModel.objects.order_by("name").values_list("name", flat=True)
        self.fields["model"].choices = [(name, name) for name in names]  # type: ignore[attr-defined]

    def clean_plan(self) -> Any:
        return _parse_plan(self.cleaned_data["plan"])

    def clean_guardrails(self) -> Any:
        text = self.cleaned_data["guardrails"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Guardrails are a JSON object: {exc.msg}.") from exc


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class AdvanceForm(forms.Form):
    override_reason = forms.CharField(required=False, max_length=2000)


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, max_length=2000)
    override_reason = forms.CharField(required=False, max_length=2000)
