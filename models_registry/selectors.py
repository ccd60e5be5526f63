"""Registry reads, shaped so list pages run a constant number of queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

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


# What a row of a model list shows. Lists read plain values, never whole model instances: a 100-row page then
# costs four queries and a few thousand small objects instead of hundreds of instances with their JSON decoded.
MODEL_ROW_FIELDS = (
    "pk",
    "name",
    "description",
    "risk_tier",
    "intended_use",
    "version_count",
    "created_at",
    "updated_at",
    "owner__username",
    "latest_version__version",
    "latest_version__status",
    "latest_version__created_at",
)
VERSION_ROW_FIELDS = (
    "pk",
    "model__name",
    "version",
    "description",
    "status",
    "reason",
    "sha256",
    "size",
    "original_filename",
    "input_spec",
    "source_commit",
    "training_data",
    "parent__version",
    "metrics",
    "created_by__username",
    "created_at",
)


def model_search(
    *, search: str = "", tag: str = "", risk_tier: str = "", status: str = "", sort: str = "name"
) -> QuerySet[RegisteredModel]:
    """Models matching the filters, in a stable order (ties broken by primary key)."""
    qs = RegisteredModel.objects.all()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if tag:
        qs = qs.filter(tags__name=tag.strip().lower())
    if risk_tier:
        qs = qs.filter(risk_tier=risk_tier)
    if status:
        qs = qs.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), status=status)))
    return qs.order_by(MODEL_SORTS.get(sort, "name"), "pk")


def model_page_rows(page: QuerySet[RegisteredModel]) -> list[dict[str, Any]]:
    """One page of models (a sliced model_search queryset) as MODEL_ROW_FIELDS rows with their tag names and current
    aliases: three queries, the page itself used as the subquery of the other two (cheaper than an IN list here)."""
    rows = list(page.values(*MODEL_ROW_FIELDS))
    ids = page.values("pk")
    tags: dict[int, list[str]] = {row["pk"]: [] for row in rows}
    aliases: dict[int, list[dict[str, Any]]] = {row["pk"]: [] for row in rows}
    if rows:
        through = RegisteredModel.tags.through.objects.filter(registeredmodel_id__in=ids)
        for model_id, tag_name in through.order_by("tag__name").values_list("registeredmodel_id", "tag__name"):
            tags[model_id].append(tag_name)
        current = AliasAssignment.objects.filter(model_id__in=ids, ended_at__isnull=True).order_by(
            "-alias"
        )  # champion first
        for model_id, alias, version, started_at in current.values_list(
            "model_id", "alias", "version__version", "started_at"
        ):
            aliases[model_id].append({"alias": alias, "version": version, "started_at": started_at})
    for row in rows:
        row["tags"] = tags[row["pk"]]
        row["aliases"] = aliases[row["pk"]]
    return rows


def version_page_rows(page: QuerySet[ModelVersion]) -> list[dict[str, Any]]:
    """One page of versions (a sliced queryset) as VERSION_ROW_FIELDS rows with their tag names: two queries."""
    rows = list(page.values(*VERSION_ROW_FIELDS))
    tags: dict[int, list[str]] = {row["pk"]: [] for row in rows}
    if rows:
        through = ModelVersion.tags.through.objects.filter(modelversion_id__in=page.values("pk"))
        for version_id, tag_name in through.order_by("tag__name").values_list("modelversion_id", "tag__name"):
            tags[version_id].append(tag_name)
    for row in rows:
        row["tags"] = tags[row["pk"]]
    return rows


def model_list(
    *, search: str = "", tag: str = "", risk_tier: str = "", status: str = "", sort: str = "name"
) -> QuerySet[RegisteredModel]:
    """Models matching the filters as instances, with tags, current aliases and latest version prefetched."""
    qs = model_search(search=search, tag=tag, risk_tier=risk_tier, status=status, sort=sort).select_related(
        "owner", "latest_version"
    )
    qs = qs.prefetch_related(
        "tags",
        Prefetch(
            "alias_assignments",
            queryset=AliasAssignment.objects.filter(ended_at__isnull=True).select_related("version"),
            to_attr="current_aliases",
        ),
    )
    return qs


def model_get(*, name: str) -> RegisteredModel:
    return RegisteredModel.objects.select_related("owner").prefetch_related("tags").get(name=name)


def version_list(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(model=model)
        .defer("inspection")  # the largest column, and no list shows it
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
