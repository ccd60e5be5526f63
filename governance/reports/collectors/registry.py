"""Evidence from the inventory: the models, their versions' lineage and hashes, and what inspection found."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.base import clipped, evidence_item
from governance.reports.scope import ReportScope
from models_registry.models import ModelVersion, VersionStatus


def _version_ref(version: ModelVersion) -> dict[str, str]:
    path = reverse("registry:version_detail", kwargs={"name": version.model.name, "version": version.version})
    return {"type": "version", "id": str(version.pk), "path": path}


def collect_inventory(scope: ReportScope) -> KindEvidence:
    """One item per model: its owner, risk tier, intended use and versions, as the registry holds them."""
    items, gaps = [], []
    counts: dict[int, int] = {}
    for version in scope.versions:
        counts[version.model_id] = counts.get(version.model_id, 0) + 1
    for model in scope.models.prefetch_related("tags"):
        owner = model.owner.get_username() if model.owner else ""
        missing = [
            label
            for label, value in (
                ("owner", owner),
                ("intended use", model.intended_use),
                ("description", model.description),
            )
            if not str(value).strip()
        ]
        gaps += [f"{model.name} records no {label}" for label in missing]
        retired_at = getattr(model, "retired_at", None)
        summary = (
            f"{model.name}: owner {owner or '—'}, risk tier {model.get_risk_tier_display().lower()}, "
            f"{counts.get(model.pk, 0)} version{'s' if counts.get(model.pk, 0) != 1 else ''} in scope"
            + (", intended use recorded" if model.intended_use.strip() else ", no intended use recorded")
            + (", retired" if retired_at else "")
        )
        items.append(
            evidence_item(
                kind=Kind.INVENTORY,
                key=f"model:{model.pk}",
                title=f"Inventory record of {model.name}",
                summary=summary,
                ok=bool(owner),
                at=model.created_at,
                model=model.name,
                ref={"type": "model", "id": str(model.pk), "path": reverse("registry:model_detail", args=[model.name])},
                values={
                    "name": model.name,
                    "owner": owner,
                    "risk_tier": model.risk_tier,
                    "intended_use": model.intended_use,
                    "description": model.description,
                    "tags": sorted(tag.name for tag in model.tags.all()),
                    "registered_at": model.created_at,
                    "versions_in_scope": counts.get(model.pk, 0),
                    "retired_at": retired_at,
                },
            )
        )
    return KindEvidence(Kind.INVENTORY, tuple(items), tuple(gaps))


def collect_lineage(scope: ReportScope) -> KindEvidence:
    """One item per version: the artifact's SHA-256 and size, companions, parent, source commit, training data."""
    items, gaps = [], []
    for version in scope.versions:
        label = f"{version.model.name} {version.version}"
        missing = [
            what
            for what, value in (("source commit", version.source_commit), ("training data", version.training_data))
            if not value.strip()
        ]
        gaps += [f"{label} records no {what}" for what in missing]
        parent = version.parent.version if version.parent else ""
        items.append(
            evidence_item(
                kind=Kind.LINEAGE,
                key=f"version:{version.pk}",
                title=f"Lineage of {label}",
                summary=(
                    f"{label}: sha256 {version.sha256[:12]}…, {version.size:,} bytes"
                    + (f", parent {parent}" if parent else "")
                    + (f", commit {version.source_commit[:12]}" if version.source_commit else "")
                    + (f", data {clipped(version.training_data, 60)}" if version.training_data else "")
                ),
                ok=True,
                at=version.created_at,
                model=version.model.name,
                version=version.version,
                ref=_version_ref(version),
                values={
                    "model": version.model.name,
                    "version": version.version,
                    "sha256": version.sha256,
                    "size": version.size,
                    "original_filename": version.original_filename,
                    "onnx_sha256": version.onnx_sha256,
                    "onnx_size": version.onnx_size,
                    "sample_inputs_sha256": version.sample_inputs_sha256,
                    "sample_inputs_size": version.sample_inputs_size,
                    "source_commit": version.source_commit,
                    "training_data": version.training_data,
                    "parent": parent,
                    "uploaded_by": version.created_by.get_username() if version.created_by else "",
                    "uploaded_at": version.created_at,
                    "status": version.status,
                },
            )
        )
    return KindEvidence(Kind.LINEAGE, tuple(items), tuple(gaps))


def _inspection_values(inspection: dict[str, Any] | None) -> dict[str, Any]:
    inspection = inspection or {}
    keep = ("parameters", "buffers", "dtypes", "file_size", "format_version", "producer_torch", "methods", "operators")
    values = {key: inspection.get(key) for key in keep if key in inspection}
    operators = values.get("operators")
    if isinstance(operators, list):
        values["operators"] = len(operators)  # the count; the full list stays on the version page
    return values


def collect_inspection(scope: ReportScope) -> KindEvidence:
    """One item per version: archive and pickle checks and the sandboxed load, passed (ready) or refused."""
    items, gaps = [], []
    for version in scope.versions:
        label = f"{version.model.name} {version.version}"
        if version.status == VersionStatus.READY:
            ok: bool | None = True
            summary = f"{label}: archive, pickle allow-list and sandboxed load passed; ready"
        elif version.status == VersionStatus.REJECTED:
            ok = False
            summary = f"{label}: refused by inspection: {version.reason[:160]}"
        else:
            ok = None
            summary = f"{label}: inspection not finished"
            gaps.append(f"{label} is still being inspected")
        items.append(
            evidence_item(
                kind=Kind.INSPECTION,
                key=f"inspection:{version.pk}",
                title=f"Inspection of {label}",
                summary=summary,
                ok=ok,
                at=version.created_at,
                model=version.model.name,
                version=version.version,
                ref=_version_ref(version),
                values={
                    "status": version.status,
                    "reason": version.reason,
                    "sha256": version.sha256,
                    **_inspection_values(version.inspection),
                },
            )
        )
    return KindEvidence(Kind.INSPECTION, tuple(items), tuple(gaps))
