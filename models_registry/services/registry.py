"""Registry writes (models, versions, aliases): each changes rows and records the audit event in one transaction."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from forge_site.audit import audit_record
from forge_site.jobs import job_create
from forge_site.models import Job
from forge_site.parsers import surrogate_in
from models_registry.archive import ArchiveRejected, check_torchscript_archive
from models_registry.artifacts import (
    ArtifactStoreError,
    StoredFile,
    artifact_claim,
    artifact_discard,
    artifact_store,
)
from models_registry.input_spec import InputSpecError, normalize_input_spec
from models_registry.limits import (
    ALIAS_REASON_MAX,
    DESCRIPTION_MAX,
    INTENDED_USE_MAX,
    SOURCE_COMMIT_MAX,
    TRAINING_DATA_MAX,
    VERSION_MAX,
    LimitError,
    check_metrics,
    check_text,
    clean_tags,
)
from models_registry.models import (
    Alias,
    AliasAssignment,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    Tag,
    VersionStatus,
    name_validator,
    version_validator,
)

INSPECT_TASK = "models_registry.inspect_version"


class RegistryError(Exception):
    """A request the registry refuses; `field` names the input at fault, `code` is machine-readable."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.status = status


@contextmanager
def _within_limits() -> Iterator[None]:
    """A limits.LimitError as the registry's refusal, naming the field. 422: the request has the shape the API's
    schema gives (a length the schema states is refused by the serializer, with a 400), but its content is refused."""
    try:
        yield
    except LimitError as exc:
        raise RegistryError(exc.message, field=exc.field, status=422) from exc


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    with _within_limits():
        return clean_tags(tags)


def _check_model_text(description: str | None, intended_use: str | None) -> None:
    with _within_limits():
        if description is not None:
            check_text(description, field="description", limit=DESCRIPTION_MAX)
        if intended_use is not None:
            check_text(intended_use, field="intended_use", limit=INTENDED_USE_MAX)


def _tag_objects(names: list[str]) -> list[Tag]:
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    return [existing[n] for n in names]


def _validate_name(value: str, field: str) -> None:
    try:
        (version_validator if field in {"version", "parent_version"} else name_validator)(value)
    except ValidationError as exc:
        raise RegistryError(f"{field} {value!r}: {exc.messages[0]}", field=field) from exc


def _model_snapshot(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "risk_tier": model.risk_tier,
        "intended_use": model.intended_use,
        "tags": sorted(t.name for t in model.tags.all()),
    }


def model_create(
    *,
    name: str,
    owner: Any,
    description: str = "",
    risk_tier: str = RiskTier.LIMITED,
    intended_use: str = "",
    tags: Iterable[str] | None = None,
) -> RegisteredModel:
    """Register a new model name."""
    _validate_name(name, "name")
    if risk_tier not in RiskTier.values:
        raise RegistryError(f"risk_tier must be one of {', '.join(RiskTier.values)}.", field="risk_tier")
    _check_model_text(description, intended_use)
    tag_names = _clean_tags(tags)
    if (taken := _name_taken(name)) is not None:
        raise taken
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, owner=owner, description=description, risk_tier=risk_tier, intended_use=intended_use
            )
            model.tags.set(_tag_objects(tag_names))
            audit_record(actor=owner, action="model.create", obj=model, after=_model_snapshot(model))
    except IntegrityError as exc:
        # Another request created the same name (in any case) at the same moment: the unique index on the lowered
        # name refused this one.
        raise _name_taken(name) or RegistryError(
            f"A model named {name!r} already exists.", field="name", code="duplicate", status=409
        ) from exc
    return model


def _name_taken(name: str) -> RegistryError | None:
    existing = RegisteredModel.objects.filter(name__iexact=name).values_list("name", flat=True).first()
    if existing is None:
        return None
    same = " (names are compared without regard to case)" if existing != name else ""
    return RegistryError(
        f"A model named {existing!r} already exists{same}.", field="name", code="duplicate", status=409
    )


@transaction.atomic
def model_update(
    *,
    model: RegisteredModel,
    actor: Any,
    description: str | None = None,
    risk_tier: str | None = None,
    intended_use: str | None = None,
    tags: Iterable[str] | None = None,
) -> RegisteredModel:
    """Edit a model's metadata (never its name)."""
    _check_model_text(description, intended_use)
    tag_names = _clean_tags(tags) if tags is not None else None
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    before = _model_snapshot(model)
    if description is not None:
        model.description = description
    if intended_use is not None:
        model.intended_use = intended_use
    if risk_tier is not None:
        if risk_tier not in RiskTier.values:
            raise RegistryError(f"risk_tier must be one of {', '.join(RiskTier.values)}.", field="risk_tier")
        model.risk_tier = risk_tier
    model.save()
    if tag_names is not None:
        model.tags.set(_tag_objects(tag_names))
    after = _model_snapshot(model)
    if after != before:
        audit_record(actor=actor, action="model.update", obj=model, before=before, after=after)
    return model


def _local_path(file: UploadedFile) -> str:
    """Uploads arrive as temporary files (HashingUploadHandler); anything else is refused rather than read."""
    path = getattr(file, "temporary_file_path", None)
    if path is None:
        raise RegistryError("The upload did not arrive as a file on disk.", field="artifact")
    return str(path())


def _check_companion(file: UploadedFile, field: str) -> None:
    if not file.size:
        raise RegistryError(f"The {field} file is empty.", field=field)
    path = getattr(file, "temporary_file_path", None)
    if field == "sample_inputs" and path is not None and not zipfile.is_zipfile(path()):
        raise RegistryError(
            "sample_inputs must be an .npz file (numpy.savez) of arrays named after the inputs.", field=field
        )


def version_create(
    *,
    model: RegisteredModel,
    version: str,
    artifact: UploadedFile,
    created_by: Any,
    input_spec: Any = None,
    onnx: UploadedFile | None = None,
    sample_inputs: UploadedFile | None = None,
    source_commit: str = "",
    training_data: str = "",
    parent_version: str = "",
    description: str = "",
    metrics: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
) -> ModelVersion:
    """Check, store and record a new version, then queue its inspection. Refused input leaves nothing behind."""
    if model.retired_at is not None:
        raise RegistryError(
            f"{model.name} is retired ({model.retired_reason}); it takes no new versions.",
            code="retired",
            status=409,
        )
    _validate_name(version, "version")
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise RegistryError(
            f"{model.name} already has a version {version!r}; versions are immutable, choose a new version string.",
            field="version",
            code="duplicate",
            status=409,
        )
    spec = None
    if input_spec not in (None, "", {}):
        try:
            spec = normalize_input_spec(input_spec)
        except InputSpecError as exc:
            raise RegistryError(str(exc), field="input_spec") from exc
    if spec is None and sample_inputs is None:
        raise RegistryError("Give an input_spec (or sample_inputs) so the model can be dry-run.", field="input_spec")
    _check_metrics(metrics)
    tag_names = _clean_tags(tags)
    with _within_limits():
        check_text(description, field="description", limit=DESCRIPTION_MAX)
        check_text(source_commit, field="source_commit", limit=SOURCE_COMMIT_MAX, one_line=True)
        check_text(training_data, field="training_data", limit=TRAINING_DATA_MAX, one_line=True)
        check_text(parent_version, field="parent_version", limit=VERSION_MAX, one_line=True)
    parent = None
    if parent_version:
        parent = ModelVersion.objects.filter(model=model, version=parent_version).first()
        if parent is None:
            raise RegistryError(
                f"{model.name} has no version {parent_version!r} to be the parent.", field="parent_version"
            )
    if not artifact.size:
        raise RegistryError("The artifact file is empty.", field="artifact")
    if artifact.size > settings.FORGE_MAX_ARTIFACT_BYTES:
        raise RegistryError("The artifact is over the size limit.", field="artifact", code="too_large", status=413)
    try:
        check_torchscript_archive(_local_path(artifact), max_uncompressed=4 * settings.FORGE_MAX_ARTIFACT_BYTES)
    except ArchiveRejected as exc:
        raise RegistryError(str(exc), field="artifact", code="bad_artifact") from exc
    for companion, field in ((onnx, "onnx"), (sample_inputs, "sample_inputs")):
        if companion is not None:
            _check_companion(companion, field)

    stored: list[StoredFile] = []
    try:
        main = artifact_store(artifact, kind="torchscript", suffix=".pt")
        stored.append(main)
        onnx_file = artifact_store(onnx, kind="onnx", suffix=".onnx") if onnx is not None else None
        if onnx_file:
            stored.append(onnx_file)
        sample_file = (
            artifact_store(sample_inputs, kind="samples", suffix=".npz") if sample_inputs is not None else None
        )
        if sample_file:
            stored.append(sample_file)
        with transaction.atomic():
            for item in stored:  # holds each file's lock until this row commits: no clean-up can remove it now
                artifact_claim(item)
            mv = ModelVersion.objects.create(
                model=model,
                version=version,
                description=description,
                artifact=main.name,
                sha256=main.sha256,
                size=main.size,
                original_filename=(artifact.name or "")[:255],
                onnx=onnx_file.name if onnx_file else "",
                onnx_sha256=onnx_file.sha256 if onnx_file else "",
                onnx_size=onnx_file.size if onnx_file else None,
                sample_inputs=sample_file.name if sample_file else "",
                sample_inputs_sha256=sample_file.sha256 if sample_file else "",
                sample_inputs_size=sample_file.size if sample_file else None,
                input_spec=spec,
                source_commit=source_commit,
                training_data=training_data,
                parent=parent,
                metrics=metrics or {},
                created_by=created_by,
            )
            mv.tags.set(_tag_objects(tag_names))
            RegisteredModel.objects.filter(pk=model.pk).update(
                version_count=F("version_count") + 1, latest_version=mv, updated_at=timezone.now()
            )
            audit_record(
                actor=created_by,
                action="version.upload",
                obj=mv,
                object_repr=f"{model.name}:{version}",
                after={
                    "model": model.name,
                    "version": version,
                    "sha256": mv.sha256,
                    "size": mv.size,
                    "onnx_sha256": mv.onnx_sha256 or None,
                    "sample_inputs_sha256": mv.sample_inputs_sha256 or None,
                    "source_commit": mv.source_commit,
                    "training_data": mv.training_data,
                    "parent": parent.version if parent else None,
                },
            )
            version_inspect(version=mv, actor=created_by)
    except IntegrityError as exc:
        _discard_unreferenced(stored)
        raise RegistryError(
            f"{model.name} already has a version {version!r}.", field="version", code="duplicate", status=409
        ) from exc
    except ArtifactStoreError as exc:
        _discard_unreferenced(stored)
        raise RegistryError(str(exc), code="storage_unavailable", status=503) from exc
    except BaseException:
        _discard_unreferenced(stored)
        raise
    return mv


def artifact_referenced(name: str) -> bool:
    """Whether any version references a stored file (its artifact, ONNX companion or sample inputs)."""
    return ModelVersion.objects.filter(Q(artifact=name) | Q(onnx=name) | Q(sample_inputs=name)).exists()


def _discard_unreferenced(stored: list[StoredFile]) -> None:
    """A failed upload's clean-up: remove what it stored unless a version references it (the race's winner, or an
    earlier version with the same bytes); see models_registry.artifacts."""
    for item in stored:
        artifact_discard(item, referenced=artifact_referenced)


def version_inspect(*, version: ModelVersion, actor: Any) -> Job:
    """Queue the inspection job on the gpu queue (sent when the surrounding transaction commits)."""
    return job_create(
        kind="inspect",
        task_name=INSPECT_TASK,
        queue="gpu",
        subject=version,
        subject_label=f"{version.model.name}:{version.version}",
        params={"sha256": version.sha256},
        created_by=actor,
    )


@transaction.atomic
def version_record_inspection(
    *, version_id: int, ok: bool, inspection: dict[str, Any] | None, reason: str
) -> ModelVersion:
    """Store what inspection found and move the version to ready or rejected (only from validating)."""
    mv = ModelVersion.objects.select_for_update().select_related("model").get(pk=version_id)
    if mv.status != VersionStatus.VALIDATING:
        return mv
    before = {"status": mv.status}
    mv.status = VersionStatus.READY if ok else VersionStatus.REJECTED
    mv.inspection = inspection
    mv.reason = "" if ok else reason
    mv.save(update_fields=["status", "inspection", "reason"])
    audit_record(
        actor=None,
        action="version.ready" if ok else "version.reject",
        obj=mv,
        object_repr=f"{mv.model.name}:{mv.version}",
        before=before,
        after={"status": mv.status, "reason": mv.reason or None},
    )
    return mv


def _check_metrics(metrics: Any) -> None:
    if metrics is None:
        return
    if not isinstance(metrics, dict):
        raise RegistryError("metrics must be a JSON object of name -> number.", field="metrics")
    try:
        json.dumps(metrics, allow_nan=False)
    except ValueError:  # json reads a literal like 1e999 as infinity, which no JSON column can store
        raise RegistryError(
            "metrics hold a number too large for JSON (it reads as infinity); send a finite number.", field="metrics"
        ) from None
    with _within_limits():
        check_metrics(metrics)
    surrogate = surrogate_in(metrics)
    if surrogate:
        raise RegistryError(
            f"metrics hold {surrogate}, a lone surrogate escape, which is not a character.",
            field="metrics",
            code="surrogate_characters_not_allowed",
        )


@transaction.atomic
def version_update_metadata(
    *,
    version: ModelVersion,
    actor: Any,
    description: str | None = None,
    metrics: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
) -> ModelVersion:
    """Edit what may change on a version: description, metrics, tags. The artifact and hash never change."""
    if description is not None:
        with _within_limits():
            check_text(description, field="description", limit=DESCRIPTION_MAX)
    if metrics is not None:
        _check_metrics(metrics)
    tag_names = _clean_tags(tags) if tags is not None else None
    mv = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    before = {"description": mv.description, "metrics": mv.metrics, "tags": sorted(t.name for t in mv.tags.all())}
    if description is not None:
        mv.description = description
    if metrics is not None:
        mv.metrics = metrics
    mv.save(update_fields=["description", "metrics"])
    if tag_names is not None:
        mv.tags.set(_tag_objects(tag_names))
    after = {"description": mv.description, "metrics": mv.metrics, "tags": sorted(t.name for t in mv.tags.all())}
    if after != before:
        audit_record(
            actor=actor,
            action="version.update",
            obj=mv,
            object_repr=f"{mv.model.name}:{mv.version}",
            before=before,
            after=after,
        )
    return mv


@transaction.atomic
def alias_set(
    *,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion,
    actor: Any,
    reason: str = "",
    at: datetime | None = None,
) -> AliasAssignment:
    """Move an alias to a version, closing the previous holder's period. Only the promotion service calls this."""
    if alias not in Alias.values:
        raise RegistryError(f"alias must be one of {', '.join(Alias.values)}.", field="alias")
    if version.model_id != model.pk:
        raise RegistryError("The version belongs to another model.", field="version")
    with _within_limits():
        check_text(reason, field="reason", limit=ALIAS_REASON_MAX)
    now = at or timezone.now()
    RegisteredModel.objects.select_for_update().get(pk=model.pk)  # one writer of the model's aliases (and retiring)
    # Read again under the lock: the caller's copy may predate a retirement.
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    if not version.is_usable:
        raise RegistryError(
            f"{version.unusable_reason()}: only a ready version that is not retired can hold {alias}.",
            field="version",
            code="retired" if version.is_retired else "not_ready",
            status=409,
        )
    current = AliasAssignment.objects.filter(model=model, alias=alias, ended_at__isnull=True).first()
    if current is not None and current.version_id == version.pk:
        return current
    if current is not None:
        current.ended_at = now
        current.save(update_fields=["ended_at"])
    assignment = AliasAssignment.objects.create(
        model=model, alias=alias, version=version, started_at=now, assigned_by=actor, reason=reason
    )
    audit_record(
        actor=actor,
        action="alias.move",
        obj=model,
        object_repr=f"{model.name}@{alias}",
        before={"alias": alias, "version": current.version.version if current else None},
        after={"alias": alias, "version": version.version, "reason": reason or None},
    )
    return assignment


@transaction.atomic
def alias_clear(*, model: RegisteredModel, alias: str, actor: Any, reason: str = "") -> None:
    """End the current holder's period without a successor (e.g. a rollback with nothing to fall back to)."""
    RegisteredModel.objects.select_for_update().get(pk=model.pk)
    current = (
        AliasAssignment.objects.filter(model=model, alias=alias, ended_at__isnull=True)
        .select_related("version")
        .first()
    )
    if current is None:
        return
    current.ended_at = timezone.now()
    current.save(update_fields=["ended_at"])
    audit_record(
        actor=actor,
        action="alias.clear",
        obj=model,
        object_repr=f"{model.name}@{alias}",
        before={"alias": alias, "version": current.version.version},
        after={"alias": alias, "version": None, "reason": reason or None},
    )
