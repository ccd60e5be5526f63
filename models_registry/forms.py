"""Registry forms: they shape browser input for the services, which do the real validation."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms

from models_registry.limits import (
    DESCRIPTION_MAX,
    INTENDED_USE_MAX,
    METRICS_BYTES_MAX,
    REASON_MAX,
    SOURCE_COMMIT_MAX,
    TAG_MAX,
    TAGS_MAX,
    TRAINING_DATA_MAX,
    VERSION_MAX,
)
from models_registry.models import Alias, ModelVersion, RegisteredModel, RiskTier, VersionStatus
from models_registry.selectors import MODEL_SORTS

INPUT_SPEC_EXAMPLE = '{"inputs": [\n  {"name": "x", "shape": [null, 32], "dtype": "float32"}\n]}'

SORT_CHOICES = [
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("-updated", "Recently updated"),
    ("-created", "Newest"),
    ("created", "Oldest"),
    ("-versions", "Most versions"),
    ("risk", "Risk tier"),
]


def split_tags(raw: str) -> list[str]:
    return [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]


class ModelFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=128, label="Search")
    tag = forms.CharField(required=False, max_length=64)
    risk_tier = forms.ChoiceField(required=False, choices=[("", "Any risk tier"), *RiskTier.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any version status"), *VersionStatus.choices])
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean_sort(self) -> str:
        value = self.cleaned_data.get("sort") or "name"
        return value if value in MODEL_SORTS else "name"


# Room for TAGS_MAX tags of TAG_MAX characters and their separators; the service counts and checks each tag.
TAGS_FIELD_MAX = TAGS_MAX * (TAG_MAX + 2)
TAGS_HELP = f"Comma-separated, e.g. credit, retail: up to {TAGS_MAX} of letters, digits, '.', '_', '-' and ':'."


class ModelEditForm(forms.Form):
    description = forms.CharField(required=False, max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 3}))
    risk_tier = forms.ChoiceField(choices=RiskTier.choices, initial=RiskTier.LIMITED)
    intended_use = forms.CharField(
        required=False,
        max_length=INTENDED_USE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Who uses its decisions, for what, and what not"}),
    )
    tags = forms.CharField(
        required=False,
        max_length=TAGS_FIELD_MAX,
        help_text=TAGS_HELP,
        widget=forms.TextInput(attrs={"placeholder": "credit, retail"}),
    )

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data.get("tags", ""))

    @classmethod
    def initial_for(cls, model: RegisteredModel) -> dict[str, Any]:
        return {
            "description": model.description,
            "risk_tier": model.risk_tier,
            "intended_use": model.intended_use,
            "tags": ", ".join(t.name for t in model.tags.all()),
        }


class ModelCreateForm(ModelEditForm):
    name = forms.CharField(
        max_length=128,
        help_text="Letters, digits, '.', '_' or '-'; it cannot be changed later.",
        widget=forms.TextInput(attrs={"placeholder": "credit-risk", "autofocus": True}),
    )
    field_order = ["name", "description", "risk_tier", "intended_use", "tags"]


class VersionUploadForm(forms.Form):
    version = forms.CharField(
        max_length=VERSION_MAX, widget=forms.TextInput(attrs={"placeholder": "1.0.0", "autofocus": True})
    )
    artifact = forms.FileField(
        label="TorchScript artifact",
        help_text="A file saved with torch.jit.save (.pt). It is never unpickled; a sandboxed worker inspects it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pt,.pth,.zip,.torchscript"}),
    )
    input_spec = forms.CharField(
        required=False,
        label="Input spec (JSON)",
        help_text="null in a shape means any size. Needed unless you upload sample inputs.",
        widget=forms.Textarea(
            attrs={"rows": 4, "class": "mono", "spellcheck": "false", "placeholder": INPUT_SPEC_EXAMPLE}
        ),
    )
    onnx = forms.FileField(
        required=False,
        label="ONNX export (optional)",
        help_text="The same model as ONNX, for parity checks.",
        widget=forms.ClearableFileInput(attrs={"accept": ".onnx"}),
    )
    sample_inputs = forms.FileField(
        required=False,
        label="Sample inputs (optional .npz)",
        help_text="numpy.savez arrays named after the inputs; loaded without pickle.",
        widget=forms.ClearableFileInput(attrs={"accept": ".npz"}),
    )
    source_commit = forms.CharField(
        required=False,
        max_length=SOURCE_COMMIT_MAX,
        widget=forms.TextInput(attrs={"placeholder": "git SHA", "class": "mono"}),
    )
    training_data = forms.CharField(
        required=False,
        max_length=TRAINING_DATA_MAX,
        label="Training data",
        widget=forms.TextInput(attrs={"placeholder": "s3://datasets/credit/2026-01 or a dataset id"}),
    )
    parent_version = forms.ChoiceField(required=False, label="Parent version")
    description = forms.CharField(required=False, max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 3}))
    metrics = forms.CharField(
        required=False,
        max_length=METRICS_BYTES_MAX,
        label="Metrics (optional JSON)",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono", "placeholder": '{"auc": 0.91, "ks": 0.42}'}),
    )
    tags = forms.CharField(
        required=False,
        max_length=TAGS_FIELD_MAX,
        help_text=TAGS_HELP,
        widget=forms.TextInput(attrs={"placeholder": "baseline"}),
    )

    def __init__(self, *args: Any, model: RegisteredModel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = ModelVersion.objects.filter(model=model).order_by("-created_at").values_list("version", flat=True)
        self.fields["parent_version"].choices = [  # type: ignore[attr-defined]
            ("", "— none —"),
            *((v, v) for v in versions),
        ]

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data.get("tags", ""))

    def clean_metrics(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("metrics", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Metrics are not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('Metrics must be a JSON object such as {"auc": 0.91}.')
        return value


class RetireForm(forms.Form):
    """Retiring a model or a version: a reason for the record, and a box to tick that says what it means."""

    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Why, for the record: replaced by 2.0, data withdrawn…"}
        ),
    )
    confirm = forms.BooleanField(
        label="I understand: it stays in the registry with its records, and can no longer be evaluated, promoted, "
        "aliased or served. Retiring is final."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "retire")
        super().__init__(*args, **kwargs)


class AliasAtForm(forms.Form):
    alias = forms.ChoiceField(choices=Alias.choices)
    at = forms.DateTimeField(label="On (UTC)")


# --- parity and benchmark runs ------------------------------------------------------------------------------------

EVAL_DTYPE_CHOICES = [(dtype, dtype) for dtype in ("float32", "float16", "bfloat16", "float64")]
CANDIDATE_DEVICES = [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")]
DEVICE_HELP = "auto: the GPU when the worker has one."
REFERENCE_DEVICES = [("cpu", "cpu"), ("cuda", "cuda")]


class RunSubmission(forms.Form):
    """A one-time token rendered into a run form: posting the same form twice (a double click, a resubmitted page)
    starts one run, and the second post lands on it (the service's idempotency key)."""

    submission = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("submission", uuid.uuid4())

    def idempotency_key(self) -> str:
        token = self.cleaned_data.get("submission")
        return f"form:{token}" if token else ""


class ParityRunForm(RunSubmission):
    """A parity run from the version page; `reference` is 'onnx', 'device' or 'version:<version>'."""

    reference = forms.ChoiceField(label="Compare with")
    reference_device = forms.ChoiceField(
        choices=REFERENCE_DEVICES, initial="cpu", label="Reference device", required=False
    )
    # float64 by default: against the float32 candidate it is a meaningful check (a reference in the candidate's own
    # dtype on the device auto picks would repeat the same computation, which the service refuses).
    reference_dtype = forms.ChoiceField(
        choices=EVAL_DTYPE_CHOICES, initial="float64", label="Reference dtype", required=False
    )
    samples = forms.IntegerField(min_value=1, initial=1024)
    batch_size = forms.IntegerField(min_value=1, initial=64, label="Batch size")
    seed = forms.IntegerField(min_value=0, initial=0)
    rtol = forms.FloatField(min_value=0, required=False, label="rtol", help_text="Empty: the dtype's default.")
    atol = forms.FloatField(min_value=0, required=False, label="atol", help_text="Empty: the dtype's default.")
    device = forms.ChoiceField(
        choices=CANDIDATE_DEVICES, initial="auto", label="Candidate device", help_text=DEVICE_HELP
    )
    dtype = forms.ChoiceField(choices=EVAL_DTYPE_CHOICES, initial="float32", label="Candidate dtype")
    allow_fallback = forms.BooleanField(required=False, label="Fall back to the CPU if no GPU is visible")

    # A service refusal names the API's field; these are the form fields that show it.
    SERVICE_FIELDS = {
        "reference.version": "reference",
        "reference.device": "reference_device",
        "reference.dtype": "reference_dtype",
    }

    def __init__(self, *args: Any, version: ModelVersion, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "parity")
        super().__init__(*args, **kwargs)
        others = (
            ModelVersion.objects.usable()  # a retired version cannot be evaluated, not even as a reference
            .filter(model_id=version.model_id)
            .exclude(pk=version.pk)
            .order_by("-created_at")
            .values_list("version", flat=True)
        )
        choices: list[tuple[str, str]] = []
        if version.onnx:
            choices.append(("onnx", "its ONNX companion (ONNX Runtime)"))
        choices += [(f"version:{other}", f"version {other}") for other in others]
        choices.append(("device", "the same artifact on another device or dtype"))
        self.fields["reference"].choices = choices  # type: ignore[attr-defined]
        self.initial.setdefault("reference", choices[0][0])

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as keyword arguments of services.parity_start."""
        data = self.cleaned_data
        choice = data["reference"]
        if choice == "onnx":
            reference: dict[str, Any] = {"kind": "onnx"}
        elif choice == "device":
            reference = {"kind": "device", "device": data["reference_device"], "dtype": data["reference_dtype"]}
        else:
            reference = {"kind": "version", "version": choice.removeprefix("version:")}
        return {
            "reference": reference,
            "samples": data["samples"],
            "batch_size": data["batch_size"],
            "seed": data["seed"],
            "rtol": data["rtol"],
            "atol": data["atol"],
            "device": data["device"],
            "dtype": data["dtype"],
            "allow_fallback": data["allow_fallback"],
        }


class BenchmarkRunForm(RunSubmission):
    batch_sizes = forms.CharField(
        initial="1, 8, 64", max_length=200, label="Batch sizes", help_text="Comma-separated, e.g. 1, 8, 64"
    )
    device = forms.ChoiceField(choices=CANDIDATE_DEVICES, initial="auto", help_text=DEVICE_HELP)
    dtype = forms.ChoiceField(choices=EVAL_DTYPE_CHOICES, initial="float32")
    threads = forms.IntegerField(min_value=1, required=False, label="CPU threads", help_text="Empty: the worker's.")
    warmup = forms.IntegerField(min_value=0, initial=10, label="Warm-up calls")
    time_cap_s = forms.FloatField(min_value=0.1, initial=30, label="Time cap per batch size (s)")
    allow_fallback = forms.BooleanField(required=False, label="Fall back to the CPU if no GPU is visible")

    SERVICE_FIELDS: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "benchmark")
        super().__init__(*args, **kwargs)

    def clean_batch_sizes(self) -> list[int]:
        parts = [part for part in self.cleaned_data["batch_sizes"].replace(",", " ").split() if part]
        if not parts:
            raise forms.ValidationError("Give at least one batch size.")
        sizes = []
        for part in parts:
            if not part.isdigit() or int(part) < 1:
                raise forms.ValidationError(f"{part!r} is not a batch size; use whole numbers such as 1, 8, 64.")
            sizes.append(int(part))
        return sizes

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as keyword arguments of services.benchmark_start."""
        return {name: value for name, value in self.cleaned_data.items() if name != "submission"}
