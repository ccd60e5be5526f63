"""The registry's demo step: demo users, four real TorchScript models, inspected, with evidence and aliases.

`manage.py forge_demo` runs it first, then the steps other apps add to settings.FORGE_DEMO_STEPS. Idempotent:
whatever already exists is left as it is, so a second run changes nothing. The inspections, parity runs and
benchmarks run in this process through the job machinery (the job bodies the workers use), so the demo needs
neither Redis nor a worker.

Every record is written when the demo runs, through the same services a person's actions go through: the version
rows, the alias history and the audit trail agree about when each thing happened (nothing is backdated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from django.contrib.auth.models import User
from django.db import transaction

from forge_site.models import Job, JobStatus
from forge_site.roles import Role
from forge_site.users import user_upsert
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, VersionStatus
from models_registry.services import RegistryError, alias_set, model_create, version_create

if TYPE_CHECKING:
    from models_registry.management.commands._demo_models import Built


class DemoFailed(Exception):
    """A demo step could not seed what it should; the message lists what."""


DEMO_ACTOR = "forge_demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role | None
    password: str
    note: str


LOGINS = [
    DemoLogin("erin", Role.ENGINEER, "forge-demo-erin", "uploads models, runs jobs"),
    DemoLogin("mo", Role.MANAGER, "forge-demo-mo", "approves promotions"),
    DemoLogin("olga", Role.OFFICER, "forge-demo-olga", "audit trail, reports"),
    DemoLogin("admin", None, "forge-demo-admin", "Django admin at /admin/ (staff)"),
]


@dataclass(frozen=True)
class DemoVersion:
    version: str
    input_spec: dict[str, Any]
    source_commit: str
    training_data: str
    description: str = ""
    parent: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoModel:
    name: str
    description: str
    risk_tier: str
    intended_use: str
    tags: tuple[str, ...]
    owner: str
    versions: tuple[DemoVersion, ...]
    # (alias, version, reason), applied in order when the demo runs, after the evidence
    aliases: tuple[tuple[str, str, str], ...] = ()
    # parity and benchmark runs to record, as (kind, version, request); run in this process like the inspections
    evidence: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    builders: dict[str, Callable[[], Built]] = field(default_factory=dict, compare=False)


CREDIT_SPEC = {"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]}
DIGITS_SPEC = {"inputs": [{"name": "x", "shape": [None, 1, 28, 28], "dtype": "float32"}]}
FRAUD_SPEC = {"inputs": [{"name": "x", "shape": [None, 12], "dtype": "float32"}]}
ROUTER_SPEC = {
    "inputs": [
        {"name": "tokens", "shape": [None, 16], "dtype": "int64", "range": [0, 1000]},
        {"name": "account", "shape": [None, 4], "dtype": "float32"},
    ]
}


# Short windows: the demo shows what a benchmark records without making `make run` wait long.
DEMO_BENCHMARK: dict[str, Any] = {
    "batch_sizes": [1, 16, 128],
    "device": "cpu",
    "threads": 1,  # a small machine's cores are shared with the web server and the other worker
    "warmup": 5,
    "window_ms": 100,
    "time_cap_s": 3,
}


def demo_models() -> list[DemoModel]:
    from models_registry.management.commands import _demo_models as dm

    credit: dict[str, Built] = {}

    def credit_version(version: str) -> Callable[[], Built]:
        def build() -> Built:
            if not credit:
                credit.update(dm.build_credit_versions())
            return credit[version]

        return build

    return [
        DemoModel(
            name="credit-risk",
            description="Probability of default for consumer loan applications (MLP over 32 bureau features).",
            risk_tier="high",
            intended_use=(
                "Decision support for underwriters on unsecured consumer loans up to 25,000 EUR. An underwriter "
                "makes every final decision. Not for use on business lending or for pricing."
            ),
            tags=("credit", "tabular", "pd-model"),
            owner="erin",
            versions=(
                DemoVersion(
                    "1.0.0",
                    input_spec=CREDIT_SPEC,
                    source_commit="3f9c2e1a7d4b8c60e5f1a2b3c4d5e6f708192a3b",
                    training_data="s3://forge-demo-data/credit/applications-2024q1.parquet (4,000 rows)",
                    description="First production candidate.",
                    tags=("baseline",),
                ),
                DemoVersion(
                    "1.1.0",
                    input_spec=CREDIT_SPEC,
                    source_commit="9b1d47c0e2f3a4b5c6d7e8f9a0b1c2d3e4f50617",
                    training_data="s3://forge-demo-data/credit/applications-2024q1-q3.parquet (12,000 rows)",
                    description="Retrained from 1.0.0 on two more quarters of applications.",
                    parent="1.0.0",
                    tags=("retrained",),
                ),
            ),
            aliases=(
                ("champion", "1.0.0", "Demo: the first approved version."),
                ("challenger", "1.1.0", "Demo: the retrained version, to compare with the champion."),
                ("champion", "1.1.0", "Demo: promoted on its holdout AUC and the parity and benchmark evidence."),
                ("challenger", "1.0.0", "Demo: kept as the fallback after the promotion of 1.1.0."),
            ),
            builders={"1.0.0": credit_version("1.0.0"), "1.1.0": credit_version("1.1.0")},
            evidence=(
                ("parity", "1.1.0", {"reference": {"kind": "onnx"}, "samples": 4096, "batch_size": 256}),
                ("parity", "1.1.0", {"reference": {"kind": "version", "version": "1.0.0"}, "samples": 2048}),
                ("benchmark", "1.0.0", DEMO_BENCHMARK),
                ("benchmark", "1.1.0", DEMO_BENCHMARK),
            ),
        ),
        DemoModel(
            name="digits-cnn",
            description="Small convolutional classifier of 28x28 scanned digits on cheque forms.",
            risk_tier="minimal",
            intended_use="Pre-fills the amount field of scanned cheques for a clerk to confirm.",
            tags=("vision", "cnn"),
            owner="erin",
            versions=(
                DemoVersion(
                    "1.0.0",
                    input_spec=DIGITS_SPEC,
                    source_commit="c0ffee00d15ea5e0b1a2c3d4e5f60718293a4b5c",
                    training_data="s3://forge-demo-data/digits/cheques-2024.npz",
                ),
            ),
            aliases=(("champion", "1.0.0", "Demo: first release."),),
            builders={"1.0.0": lambda: dm.build_untrained(dm.DigitsCNN(), seed=11)},
        ),
        DemoModel(
            name="fraud-gate",
            description="Scripted fraud screen with data-dependent refinement steps and an early exit.",
            risk_tier="critical",
            intended_use="Holds card payments for manual review; never declines a payment on its own.",
            tags=("fraud", "control-flow"),
            owner="erin",
            versions=(
                DemoVersion(
                    "0.9.0",
                    input_spec=FRAUD_SPEC,
                    source_commit="5eed5eed0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    training_data="s3://forge-demo-data/fraud/transactions-2024-08.parquet",
                    description="Pre-release; not yet approved for production.",
                ),
            ),
            builders={"0.9.0": lambda: dm.build_untrained(dm.FraudGate(), seed=13)},
            evidence=(("parity", "0.9.0", {"reference": {"kind": "device", "device": "cpu", "dtype": "bfloat16"}}),),
        ),
        DemoModel(
            name="ticket-router",
            description="Routes support tickets to one of 5 queues from token ids and account features.",
            risk_tier="limited",
            intended_use="Suggests a queue for incoming support tickets; agents can re-route.",
            tags=("nlp", "multi-input"),
            owner="erin",
            versions=(
                DemoVersion(
                    "2.0.0",
                    input_spec=ROUTER_SPEC,
                    source_commit="a11ce5e1b0b1c2d3e4f5061728394a5b6c7d8e9f",
                    training_data="s3://forge-demo-data/tickets/tokenised-2024h1.parquet",
                ),
            ),
            aliases=(("champion", "2.0.0", "Demo: first release."),),
            builders={"2.0.0": lambda: dm.build_untrained(dm.TicketRouter(), seed=17)},
        ),
    ]


def upload_from_bytes(name: str, data: bytes) -> Any:
    """A temporary file like the upload handler makes, so version_create takes the same path as a web upload."""
    from models_registry.artifacts import HashedUploadedFile

    upload = HashedUploadedFile(name, "application/octet-stream", len(data), None, None)
    upload.write(data)
    upload.seek(0)
    return upload


def seed_users(*, stdout: TextIO) -> dict[str, User]:
    users: dict[str, User] = {}
    for login in LOGINS:
        existing = User.objects.filter(username=login.username).first()
        if existing is not None:  # never reset a password someone may have changed
            users[login.username] = existing
            continue
        change = user_upsert(
            username=login.username,
            role=login.role,
            password=login.password,
            email=f"{login.username}@forge.example",
            staff=login.role is None,
            actor_label=DEMO_ACTOR,
        )
        users[login.username] = change.user
        stdout.write(f"user {login.username}: created")
    return users


def seed_model(spec: DemoModel, users: dict[str, User], stdout: TextIO) -> list[str]:
    owner = users[spec.owner]
    model = RegisteredModel.objects.filter(name=spec.name).first()
    if model is None:
        model = model_create(
            name=spec.name,
            owner=owner,
            description=spec.description,
            risk_tier=spec.risk_tier,
            intended_use=spec.intended_use,
            tags=spec.tags,
        )
        stdout.write(f"model {spec.name}: created")
    failures = []
    for demo_version in spec.versions:
        version = seed_version(model, spec, demo_version, owner, stdout)
        if version.status != VersionStatus.READY:
            failures.append(f"{spec.name} {demo_version.version}: {version.status} {version.reason}")
    for kind, version_string, request in spec.evidence:
        version = ModelVersion.objects.get(model=model, version=version_string)
        if version.status == VersionStatus.READY:
            seed_evidence(version, kind, request, owner, stdout)
    if not AliasAssignment.objects.filter(model=model).exists():  # promotions come after the evidence
        seed_aliases(model, spec, users, stdout)
    return failures


def seed_evidence(version: ModelVersion, kind: str, request: dict[str, Any], actor: User, stdout: TextIO) -> None:
    """Run a parity or benchmark request in this process, unless the version already has one like it."""
    from forge_site.jobs import job_run
    from models_registry.evaluation import benchmark_execute, parity_execute
    from models_registry.selectors import version_evaluations
    from models_registry.services import benchmark_start, parity_start

    label = f"{version.model.name} {version.version}"
    existing = version_evaluations(version=version, kind=kind)
    if kind == "parity":
        existing = existing.filter(params__reference__kind=request["reference"]["kind"])
    if existing.filter(status=JobStatus.SUCCEEDED).exists():
        return
    started = time.perf_counter()
    # As with inspections: the run finishes inside the transaction, so the on-commit enqueue sends nothing.
    with transaction.atomic():
        if kind == "parity":
            job = parity_start(version=version, actor=actor, **request)
            finished = job_run(job_id=str(job.pk), work=parity_execute)
        else:
            job = benchmark_start(version=version, actor=actor, **request)
            finished = job_run(job_id=str(job.pk), work=benchmark_execute)
    result = (finished.result or {}) if finished else {}
    outcome = result.get("summary") if kind == "parity" else finished.status if finished else "not run"
    stdout.write(f"{kind} {label}: {outcome} ({time.perf_counter() - started:.1f} s)")
    if finished is not None and finished.status != JobStatus.SUCCEEDED:
        stdout.write(f"{kind} of {label} {finished.status}: {finished.error}")


def seed_version(
    model: RegisteredModel, spec: DemoModel, demo: DemoVersion, owner: User, stdout: TextIO
) -> ModelVersion:
    label = f"{spec.name} {demo.version}"
    version = ModelVersion.objects.filter(model=model, version=demo.version).first()
    if version is not None:
        if version.status == VersionStatus.VALIDATING:
            inspect_queued(version, label, stdout)
            version.refresh_from_db()
        return version
    built = spec.builders[demo.version]()
    started = time.perf_counter()
    upload = upload_from_bytes(f"{spec.name}-{demo.version}.pt", built.data)
    onnx = upload_from_bytes(f"{spec.name}-{demo.version}.onnx", built.onnx) if built.onnx else None
    try:
        # One transaction around upload and inspection: when it commits, the inspection job is already
        # finished, so the on-commit enqueue finds nothing to send and the demo never needs the broker.
        with transaction.atomic():
            version = version_create(
                model=model,
                version=demo.version,
                artifact=upload,
                created_by=owner,
                input_spec=demo.input_spec,
                onnx=onnx,
                source_commit=demo.source_commit,
                training_data=demo.training_data,
                parent_version=demo.parent,
                description=demo.description,
                metrics=built.metrics,
                tags=demo.tags,
            )
            inspect_queued(version, label, stdout)
    finally:
        upload.close()
        if onnx is not None:
            onnx.close()
    version.refresh_from_db()
    inspection = version.inspection or {}
    stdout.write(
        f"version {label}: {version.status} "
        f"({inspection.get('parameters', '?')} parameters, {time.perf_counter() - started:.1f} s)"
    )
    return version


def inspect_queued(version: ModelVersion, label: str, stdout: TextIO) -> None:
    from models_registry.tasks import inspect_version_now

    jobs = Job.objects.filter(
        kind="inspect",
        subject_type="models_registry.modelversion",
        subject_id=str(version.pk),
        status=JobStatus.QUEUED,
    )
    for job in jobs:
        finished = inspect_version_now(str(job.pk))
        if finished is not None and finished.status != JobStatus.SUCCEEDED:
            stdout.write(f"inspection of {label} {finished.status}: {finished.error}")


def seed_aliases(model: RegisteredModel, spec: DemoModel, users: dict[str, User], stdout: TextIO) -> None:
    approver = users["mo"]
    for alias, version_string, reason in spec.aliases:
        version = ModelVersion.objects.get(model=model, version=version_string)
        try:
            alias_set(
                model=model,
                alias=alias,
                version=version,
                actor=approver,
                reason=reason,
            )
        except RegistryError as exc:
            stdout.write(f"{spec.name}: {alias} -> {version_string} not set: {exc.message}")
            continue
        stdout.write(f"alias {spec.name}@{alias} -> {version_string}")


def seed(*, stdout: TextIO, now: datetime) -> None:
    """The registry's demo step (settings.FORGE_DEMO_STEPS). `now` is the demo's one clock for data that carries
    its own time; the registry's records need none, as each is written when it happens."""
    users = seed_users(stdout=stdout)
    failures: list[str] = []
    for spec in demo_models():
        failures += seed_model(spec, users, stdout)
    if failures:
        raise DemoFailed("Some demo versions were not inspected as ready:\n  " + "\n  ".join(failures))
