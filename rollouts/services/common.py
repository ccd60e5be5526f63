"""What every rollout service shares: its error, the audit payload naming model and versions, the row lock."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from forge_site.audit import audit_record
from rollouts.models import Rollout


class RolloutError(Exception):
    """A request the rollout services refuse; `code` for programs, `field` for the input at fault."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.status = status


def subject(rollout: Rollout) -> dict[str, Any]:
    """What every rollout audit event names, so a report can filter by model without importing rollouts."""
    return {
        "rollout": rollout.pk,
        "model": rollout.model.name,
        "champion": rollout.champion.version,
        "challenger": rollout.challenger.version,
    }


def locked(rollout: Rollout) -> Rollout:
    """The rollout row, re-read under a row lock (call inside a transaction): state checks then see the truth."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("locked() needs a transaction")
    return Rollout.objects.select_for_update().select_related("model", "champion", "challenger").get(pk=rollout.pk)


def bump(rollout: Rollout, **fields: Any) -> None:
    """Save changed fields and bump the revision a serving process watches."""
    for name, value in fields.items():
        setattr(rollout, name, value)
    Rollout.objects.filter(pk=rollout.pk).update(revision=F("revision") + 1, **fields)
    rollout.refresh_from_db(fields=["revision"])


def record(rollout: Rollout, action: str, actor: Any, *, before: Any = None, **after: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=rollout,
        object_repr=str(rollout)[:255],
        before=before,
        after={**subject(rollout), **after},
    )
