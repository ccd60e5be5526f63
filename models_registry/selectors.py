"""Registry reads, shaped so list pages run a constant number of queries."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet

from forge_site.models import Job
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag, VersionStatus

MODEL_SORTS = {
    "name": "name",
    "-name": "-name",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "created": "created_at",
    "-created": "-created_at",
    "versions": "version_count",
    "-versions": "-version_count",
    "risk": "risk_tier",
    "-risk": "-risk_tier",
}


def model_list(
    *, search: str = "", tag: str = "", risk_tier: str = "", status: str = "", sort: str = "name"
) -> QuerySet[RegisteredModel]:
    """Models matching the filters, with their tags, current aliases and latest version prefetched."""
    qs = RegisteredModel.objects.select_related("owner", "latest_version")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if tag:
        qs = qs.filter(tags__name=tag.strip().lower())
    if risk_tier:
        qs = qs.filter(risk_tier=risk_tier)
    if status:
        qs = qs.filter(versions__status=status).distinct()
    qs = qs.prefetch_related(
        "tags",
        Prefetch(
            "alias_assignments",
            queryset=AliasAssignment.objects.filter(ended_at__isnull=True).select_related("version"),
            to_attr="current_aliases",
        ),
    )
    return qs.order_by(MODEL_SORTS.get(sort, "name"), "pk")


def model_get(*, name: str) -> RegisteredModel:
    return RegisteredModel.objects.select_related("owner").prefetch_related("tags").get(name=name)


def version_list(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(model=model)
        .select_related("parent", "created_by", "model")
        .prefetch_related("tags")
        .order_by("-created_at", "-pk")
    )


def version_get(*, model_name: str, version: str) -> ModelVersion:
    return (
        ModelVersion.objects.select_related("model", "parent", "created_by")
        .prefetch_related("tags")
        .get(model__name=model_name, version=version)
    )


def alias_current(*, model: RegisteredModel) -> dict[str, ModelVersion]:
    rows = AliasAssignment.objects.filter(model=model, ended_at__isnull=True).select_related("version")
    return {row.alias: row.version for row in rows}


def alias_history(*, model: RegisteredModel, alias: str | None = None) -> QuerySet[AliasAssignment]:
    qs = AliasAssignment.objects.filter(model=model).select_related("version", "assigned_by")
    if alias:
        qs = qs.filter(alias=alias)
    return qs.order_by("-started_at", "-pk")


def alias_holder_at(*, model: RegisteredModel, alias: str, at: datetime) -> AliasAssignment | None:
    """Who held `alias` at instant `at`: one query."""
    return (
        AliasAssignment.objects.filter(model=model, alias=alias, started_at__lte=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("version", "assigned_by")
        .order_by("-started_at")
        .first()
    )


def version_jobs(*, version: ModelVersion) -> QuerySet[Job]:
    return Job.objects.filter(subject_type="models_registry.modelversion", subject_id=str(version.pk)).order_by(
        "-created_at"
    )


def version_recent(*, limit: int = 8) -> list[ModelVersion]:
    return list(ModelVersion.objects.select_related("model", "created_by").order_by("-created_at", "-pk")[:limit])


def registry_counts() -> dict[str, int]:
    """Models, and versions per status (every status present), for the dashboard."""
    counts = {"models": RegisteredModel.objects.count(), **{status: 0 for status in VersionStatus.values}}
    for row in ModelVersion.objects.values("status").annotate(n=Count("pk")).order_by():
        counts[row["status"]] = row["n"]
    counts["versions"] = sum(counts[status] for status in VersionStatus.values)
    return counts


def tag_names() -> list[str]:
    return list(Tag.objects.order_by("name").values_list("name", flat=True))
