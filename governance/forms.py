"""Report forms: start a report, edit its summary or a subcategory, finalize (with a one-time token)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms

from models_registry.models import RegisteredModel

WHOLE_INVENTORY = "__inventory__"


class ReportCreateForm(forms.Form):
    scope = forms.ChoiceField(label="Model", help_text="a model, or the whole inventory")
    versions = forms.CharField(
        required=False, label="Versions", help_text="comma-separated, e.g. 1.0.0, 1.1.0; empty: all versions"
    )
    start = forms.DateField(label="Period from", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="Period to (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    title = forms.CharField(required=False, max_length=200, help_text="empty: named after the model")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = RegisteredModel.objects.order_by("name").values_list("name", flat=True)
        cast(forms.ChoiceField, self.fields["scope"]).choices = [
            (WHOLE_INVENTORY, "Whole inventory"),
            *((n, n) for n in names),
        ]

    def model(self) -> RegisteredModel | None:
        name = self.cleaned_data["scope"]
        return None if name == WHOLE_INVENTORY else RegisteredModel.objects.get(name=name)

    def version_names(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["versions"].replace(";", ",").split(",") if part.strip()]


class ReportSummaryForm(forms.Form):
    title = forms.CharField(required=False, max_length=200)
    executive_summary = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), strip=False)


class SubcategoryForm(forms.Form):
    attestation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    narrative = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    not_applicable = forms.BooleanField(required=False, label="Not applicable")
    justification = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), strip=False)


class FinalizeForm(forms.Form):
    """Signing: the officer confirms, and the one-time token makes a double click finalize once."""

    confirm = forms.BooleanField(label="I have reviewed this report and sign it as finalized")
    submission = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("submission", uuid.uuid4())

    def idempotency_key(self) -> str:
        token = self.cleaned_data.get("submission")
        return f"form:{token}" if token else ""
