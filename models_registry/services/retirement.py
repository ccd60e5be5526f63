"""Retiring models and versions (NIST AI RMF GOVERN 1.7: decommissioning, with its reason on record).

A retired model or version keeps its artifact, its evidence and its history; it can no longer be evaluated,
promoted, aliased or served (ModelVersion.is_usable). An alias it holds is cleared in the same transaction, with an
`alias.clear` event, so no alias ever points at something that may not be served. Retirement is final.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from forge_site.audit import audit_record
from models_registry.limits import REASON_MAX
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel
from models_registry.services.registry import RegistryError, alias_clear


def _clean_reason(reason: Any) -> str:
    text = str(reason or "").strip()
    if not text:
        raise RegistryError(
            "Say why it is retired: the reason goes on the record.", field="reason", code="required", status=422
        )
    if len(text) > REASON_MAX:
        raise RegistryError(
            f"reason is {len(text):,} characters long; the limit is {REASON_MAX:,}.", field="reason", status=422
        )
    return text


def _held_aliases(model: RegisteredModel, version: ModelVersion | None = None) -> list[str]:
    """The aliases the version (or any version of the model) holds now."""
    current = AliasAssignment.objects.filter(model=model, ended_at__isnull=True)
    if version is not None:
        current = current.filter(version=version)
    return sorted(current.values_list("alias", flat=True))


def _clear(model: RegisteredModel, aliases: list[str], actor: Any, what: str) -> None:
    for alias in aliases:
        alias_clear(model=model, alias=alias, actor=actor, reason=f"{what} was retired")


@transaction.atomic
def model_retire(*, model: RegisteredModel, actor: Any, reason: Any) -> RegisteredModel:
    """Retire a model and, with it, every version it has; clears its aliases. Refused when already retired."""
    text = _clean_reason(reason)
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.retired_at is not None:
        raise RegistryError(
            f"{model.name} was already retired on {model.retired_at:%Y-%m-%d %H:%M} UTC ({model.retired_reason}).",
            code="already_retired",
            status=409,
        )
    model.retired_at = timezone.now()
    model.retired_by = actor
    model.retired_reason = text
    model.save(update_fields=["retired_at", "retired_by", "retired_reason"])
    held = _held_aliases(model)
    after = {"reason": text, "aliases": held}
    audit_record(actor=actor, action="model.retire", obj=model, before={"retired": False}, after=after)
    _clear(model, held, actor, model.name)
    return model


@transaction.atomic
def version_retire(*, version: ModelVersion, actor: Any, reason: Any) -> ModelVersion:
    """Retire one version; clears the aliases it holds. Refused when it or its model is already retired."""
    text = _clean_reason(reason)
    RegisteredModel.objects.select_for_update().get(pk=version.model_id)  # one writer of the model's aliases
    mv = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    if mv.model.retired_at is not None:
        raise RegistryError(
            f"{mv} is already retired with its model ({mv.model.retired_reason}).", code="already_retired", status=409
        )
    if mv.retired_at is not None:
        raise RegistryError(
            f"{mv} was already retired on {mv.retired_at:%Y-%m-%d %H:%M} UTC ({mv.retired_reason}).",
            code="already_retired",
            status=409,
        )
    mv.retired_at = timezone.now()
    mv.retired_by = actor
    mv.retired_reason = text
    mv.save(update_fields=["retired_at", "retired_by", "retired_reason"])
    held = _held_aliases(mv.model, mv)
    audit_record(
        actor=actor,
        action="version.retire",
        obj=mv,
        object_repr=str(mv),
        before={"retired": False, "status": mv.status},
        after={"reason": text, "model": mv.model.name, "version": mv.version, "aliases": held},
    )
    _clear(mv.model, held, actor, str(mv))
    return mv
