"""Building blocks for report tests: a model with real versions and evidence, as the registry and workers leave it."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from forge_site.models import Job
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from tests.api.helpers import mlp, temp_upload
from tests.evidence_results import benchmark_result, evaluation_job, parity_result
from tests.torchscript_models import MLP_SPEC


def ready_version(model: RegisteredModel, version: str, by: User, *, seed: int = 0, **fields: object) -> ModelVersion:
    """A real TorchScript MLP uploaded through the registry service, its inspection recorded as passed."""
    mv = version_create(
        model=model,
        version=version,
        artifact=temp_upload("model.pt", mlp(seed)),
        input_spec=MLP_SPEC,
        created_by=by,
        **fields,
    )
    return version_record_inspection(
        version_id=mv.pk, ok=True, inspection={"parameters": 2_337, "operators": ["aten::linear"]}, reason=""
    )


@dataclass
class Evidenced:
    model: RegisteredModel
    v1: ModelVersion
    v2: ModelVersion
    parity: Job
    benchmark: Job


def evidenced_model(*, engineer: User, manager: User, name: str = "credit-risk") -> Evidenced:
    """Two versions with lineage, the champion moved from 1.0.0 to 1.1.0, a passing parity run and a benchmark."""
    model = model_create(
        name=name,
        owner=engineer,
        description="Gradient-free MLP scoring credit applications.",
        intended_use="Rank consumer credit applications for manual review; not for automated denial.",
        risk_tier="high",
    )
    v1 = ready_version(model, "1.0.0", engineer, source_commit="a1b2c3d", training_data="s3://data/credit/2025-q4")
    v2 = ready_version(
        model,
        "1.1.0",
        engineer,
        seed=1,
        source_commit="d4e5f6a",
        training_data="s3://data/credit/2026-q1",
        parent_version="1.0.0",
    )
    alias_set(model=model, alias="champion", version=v1, actor=manager, reason="first release")
    alias_set(model=model, alias="champion", version=v2, actor=manager, reason="better recall, parity passed")
    parity = evaluation_job(v2, "parity", result=parity_result(noise=1e-7), created_by=engineer)
    benchmark = evaluation_job(
        v2, "benchmark", result=benchmark_result(p50_ms={1: 0.21, 8: 0.48, 64: 2.2}), created_by=engineer
    )
    return Evidenced(model=model, v1=v1, v2=v2, parity=parity, benchmark=benchmark)


def append_audit_events(count: int, *, obj_type: str, obj_id: str, obj_repr: str, actors: tuple[str, ...]) -> None:
    """`count` events about one object, appended to the real chain (hashes and head kept consistent), in bulk:
    audit_record one by one would take minutes for 10,000 events."""
    from datetime import timedelta

    from django.utils import timezone

    from forge_site.audit import GENESIS_HASH, event_hash
    from forge_site.models import AuditEvent, AuditHead

    head, _ = AuditHead.objects.get_or_create(pk=1)
    seq, prev = head.last_seq, head.last_hash or GENESIS_HASH
    start = timezone.now() - timedelta(days=20)
    actions = ("version.update", "job.queue", "job.start", "job.finish", "model.update")
    rows = []
    for i in range(count):
        seq += 1
        fields = {
            "seq": seq,
            "at": start + timedelta(seconds=i * 97),
            "actor_label": actors[i % len(actors)],
            "action": actions[i % len(actions)],
            "object_type": obj_type,
            "object_id": obj_id,
            "object_repr": obj_repr,
            "before": None,
            "after": {"step": i},
            "request_id": "",
            "prev_hash": prev,
        }
        prev = event_hash(**fields)
        rows.append(AuditEvent(hash=prev, **fields))
    AuditEvent.objects.bulk_create(rows, batch_size=2000)
    AuditHead.objects.filter(pk=1).update(last_seq=seq, last_hash=prev)
