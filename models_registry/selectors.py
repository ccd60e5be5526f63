"""Registry reads, shaped so list pages run a constant number of queries."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from forge_site.compiled import CompiledQuery
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
# In the rows model_page_rows and version_page_rows return, every *_at value is ISO 8601 UTC text (_db_timestamp).
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
    "latest_version__retired_at",
    "retired_at",
    "retired_reason",
    "retired_by__username",
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
    "retired_at",
    "retired_reason",
    "retired_by__username",
    "model__retired_at",
    "model__retired_reason",
    "model__retired_by__username",
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
    aliases: three queries."""
    rows = [dict(zip(MODEL_ROW_FIELDS, values, strict=True)) for values in _page_values(page, MODEL_ROW_FIELDS)]
    if not rows:
        return rows
    ids = [row["pk"] for row in rows]
    tags = _tag_names(page.db, _MODEL_TAGS_SQL, ids)
    aliases: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for model_id, alias, version, started_at in _fetch(page.db, _CURRENT_ALIASES_SQL, ids):
        aliases[model_id].append({"alias": alias, "version": version, "started_at": _db_timestamp(started_at)})
    for row in rows:
        row["created_at"] = _db_timestamp(row["created_at"])
        row["updated_at"] = _db_timestamp(row["updated_at"])
        row["latest_version__created_at"] = _db_timestamp(row["latest_version__created_at"])
        row["latest_version__retired_at"] = _db_timestamp(row["latest_version__retired_at"])
        row["retired_at"] = _db_timestamp(row["retired_at"])
        row["tags"] = tags.get(row["pk"], [])
        row["aliases"] = aliases[row["pk"]]
    return rows


def version_page_rows(page: QuerySet[ModelVersion]) -> list[dict[str, Any]]:
    """One page of versions (a sliced queryset) as VERSION_ROW_FIELDS rows with their tag names: two queries."""
    rows = [dict(zip(VERSION_ROW_FIELDS, values, strict=True)) for values in _page_values(page, VERSION_ROW_FIELDS)]
    if not rows:
        return rows
    tags = _tag_names(page.db, _VERSION_TAGS_SQL, [row["pk"] for row in rows])
    for row in rows:
        row["input_spec"] = _db_json(row["input_spec"])
        row["metrics"] = _db_json(row["metrics"])
        row["created_at"] = _db_timestamp(row["created_at"])
        row["retired_at"] = _db_timestamp(row["retired_at"])
        row["model__retired_at"] = _db_timestamp(row["model__retired_at"])
        row["tags"] = tags.get(row["pk"], [])
    return rows


# The list pages read their rows with a plain cursor. Through the ORM, the per-value converters (every datetime
# made aware, every JSON column decoded through its field), building the rows and compiling the tags and aliases
# queries cost 2-3x the queries themselves on this hardware (docs/performance.md). The page query is still built and
# compiled by the ORM, with its filters and ordering; the two queries that complete a page are written here, over
# the page's ids (one parameter each).
_MODEL_TAGS_SQL = """
    SELECT mt.registeredmodel_id, t.name
    FROM models_registry_registeredmodel_tags mt JOIN models_registry_tag t ON t.id = mt.tag_id
    WHERE mt.registeredmodel_id IN ({ids})
    ORDER BY t.name
"""
_VERSION_TAGS_SQL = """
    SELECT vt.modelversion_id, t.name
    FROM models_registry_modelversion_tags vt JOIN models_registry_tag t ON t.id = vt.tag_id
    WHERE vt.modelversion_id IN ({ids})
    ORDER BY t.name
"""
_CURRENT_ALIASES_SQL = """
    SELECT a.model_id, a.alias, v.version, a.started_at
    FROM models_registry_aliasassignment a JOIN models_registry_modelversion v ON v.id = a.version_id
    WHERE a.model_id IN ({ids}) AND a.ended_at IS NULL
    ORDER BY a.alias DESC
"""  # champion before challenger


DEFERRED_JOIN_FROM_ROW = 200  # where skipping rows through the joins starts to cost more than compiling a subquery


def _page_values(page: QuerySet[Any], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows of `page.values_list(*fields)` as the database driver returns them (no ORM value converters).

    A page that starts at row DEFERRED_JOIN_FROM_ROW or later is read as a "deferred join": its primary keys are
    picked first, by its own filters, order and slice, in a subquery that needs no join for the row fields, and only
    those rows are then read with their joins. With LIMIT/OFFSET alone the database joins every skipped row as well:
    page 10 of the models list took 3.3 ms of SQL here against 0.46 ms for page 1; picked by key first, 0.5 ms. The
    subquery costs 0.4-0.6 ms more to compile, so earlier pages are read in one plain query (docs/performance.md)."""
    rows = page
    deep = page.query.is_sliced and page.query.low_mark >= DEFERRED_JOIN_FROM_ROW
    if deep and not page.query.annotations:  # an ordering by an annotation stays in one query
        rows = page.model._base_manager.using(page.db).filter(pk__in=page.values("pk"))
        if page.query.order_by:  # else the model's default ordering applies to both, as it did to the page
            rows = rows.order_by(*page.query.order_by)
    try:
        sql, params = rows.values_list(*fields).query.get_compiler(using=page.db).as_sql()
    except EmptyResultSet:  # an empty slice or an impossible filter: the ORM would not query either
        return []
    with connections[page.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _fetch(using: str, sql: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """Run one of the queries above for these primary keys (one parameter each)."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql.format(ids=", ".join(["%s"] * len(ids))), ids)
        return cursor.fetchall()


def _tag_names(using: str, sql: str, ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for object_id, name in _fetch(using, sql, ids):
        names.setdefault(object_id, []).append(name)
    return names


def _db_timestamp(value: datetime | None) -> str | None:
    """A datetime column as a plain cursor returns it, written as the API writes instants ("2026-01-31T09:05:00Z"):
    SQLite's value is naive UTC (parsed by the converter Django registers for the column type), PostgreSQL's aware.
    Page rows carry this text rather than datetimes: making 300-400 datetimes aware and formatting them again cost
    about 2 ms a page here."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


# orjson reads a number of 19 digits or more as a float when it does not fit 64 bits; json, like the JSONField of the
# detail endpoints, keeps it exact.
_LONG_NUMBER = re.compile(r"\d{19}")


def _db_json(value: Any) -> Any:
    """A JSON column as a plain cursor returns it: text on SQLite and (as Django configures psycopg) PostgreSQL.
    orjson reads the 200 small documents of a 100-row versions page in a quarter of json's time. json still reads
    what orjson would read differently (long numbers) or refuses (a lone surrogate escape, which SQLite stores)."""
    if not isinstance(value, str):
        return value
    if _LONG_NUMBER.search(value):
        return json.loads(value)
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def model_list(
    *, search: str = "", tag: str = "", risk_tier: str = "", status: str = "", sort: str = "name"
) -> QuerySet[RegisteredModel]:
    """Models matching the filters as instances, with tags, current aliases and latest version prefetched."""
    qs = model_search(search=search, tag=tag, risk_tier=risk_tier, status=status, sort=sort).select_related(
        "owner", "latest_version", "retired_by"
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


_MODEL_COLUMNS = [field.attname for field in RegisteredModel._meta.concrete_fields]
_MODEL_BY_NAME = CompiledQuery(
    lambda name: RegisteredModel.objects.filter(name=name).order_by().values_list(*_MODEL_COLUMNS)
)


def model_by_name(name: str) -> RegisteredModel | None:
    """The model with this name (no relations loaded), or None. It opens every API request about one model, so its
    query is compiled once (forge_site.compiled): compiling it cost more than running it."""
    using = RegisteredModel.objects.db
    rows = _MODEL_BY_NAME.rows(name, using=using)
    return RegisteredModel.from_db(using, _MODEL_COLUMNS, rows[0]) if rows else None


def model_get(*, name: str) -> RegisteredModel:
    return RegisteredModel.objects.select_related("owner", "retired_by").prefetch_related("tags").get(name=name)


def version_list(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(model=model)
        .defer("inspection")  # the largest column, and no list shows it
        .select_related("parent", "created_by", "model", "retired_by", "model__retired_by")
        .prefetch_related("tags")
        .order_by("-created_at", "-pk")
    )


def version_usable(*, model: RegisteredModel | None = None) -> QuerySet[ModelVersion]:
    """Versions that may be evaluated, promoted, aliased or served (ModelVersion.is_usable), newest first."""
    qs = ModelVersion.objects.usable().select_related("model")
    if model is not None:
        qs = qs.filter(model=model)
    return qs.order_by("-created_at", "-pk")


def version_get(*, model_name: str, version: str) -> ModelVersion:
    return (
        ModelVersion.objects.select_related("model", "parent", "created_by", "retired_by", "model__retired_by")
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


EVALUATION_KINDS = ("parity", "benchmark")


def version_evaluations(*, version: ModelVersion, kind: str) -> QuerySet[Job]:
    """The version's parity or benchmark runs, newest first (with who started them)."""
    if kind not in EVALUATION_KINDS:
        raise ValueError(f"kind must be one of {EVALUATION_KINDS}")
    return version_jobs(version=version).filter(kind=kind).select_related("created_by")


def benchmark_runs(
    *, model: RegisteredModel, job_ids: list[str] | None = None, limit: int = 100
) -> list[tuple[Job, str]]:
    """Succeeded benchmark runs of the model's versions with each one's version string: the ones asked for, in the
    order asked (unknown, foreign or unfinished ids are left out), or else the latest `limit`. Two queries."""
    versions = {str(pk): version for pk, version in model.versions.values_list("pk", "version")}
    runs = Job.objects.filter(
        kind="benchmark",
        status="succeeded",
        subject_type="models_registry.modelversion",
        subject_id__in=list(versions),
    ).select_related("created_by")
    if job_ids is None:
        return [(job, versions[job.subject_id]) for job in runs.order_by("-created_at", "-pk")[:limit]]
    wanted = []
    for raw in job_ids:
        try:
            wanted.append(str(uuid.UUID(str(raw))))
        except ValueError:
            continue
    found = {str(job.pk): job for job in runs.filter(pk__in=wanted)}
    return [(found[pk], versions[found[pk].subject_id]) for pk in wanted if pk in found]
