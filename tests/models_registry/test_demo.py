"""`manage.py forge_demo`: real TorchScript models, inspected through the job machinery, idempotent."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import torch
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from forge_site.audit import audit_verify_chain
from forge_site.celery import app
from forge_site.models import AuditEvent, Job, JobStatus
from forge_site.roles import user_roles
from models_registry import demo as registry_demo
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, VersionStatus
from models_registry.selectors import alias_holder_at

pytestmark = pytest.mark.django_db


def demo() -> str:
    out = StringIO()
    call_command("forge_demo", "--allow-without-debug", stdout=out, stderr=StringIO())
    return out.getvalue()


AGREE = timedelta(seconds=2)  # a row and its audit event are written in one transaction, moments apart


def assert_records_agree(started: Any, finished: Any) -> None:
    """The demo backdates nothing: every model, version and alias period is dated within the run, and each agrees
    with the audit event that records it (an auditor comparing them finds one story)."""
    events = list(AuditEvent.objects.order_by("seq"))
    assert all(started <= event.at <= finished for event in events)

    def event_for(action: str, object_type: str, object_id: Any) -> AuditEvent:
        (event,) = [
            e for e in events if e.action == action and (e.object_type, e.object_id) == (object_type, str(object_id))
        ]
        return event

    for model in RegisteredModel.objects.all():
        assert started <= model.created_at <= finished
        assert abs(model.created_at - event_for("model.create", "models_registry.registeredmodel", model.pk).at) < AGREE
    uploads = []
    for version in ModelVersion.objects.select_related("model"):
        assert started <= version.created_at <= finished
        upload = event_for("version.upload", "models_registry.modelversion", version.pk)
        assert abs(version.created_at - upload.at) < AGREE
        uploads.append((upload.seq, version.created_at))
    assert [at for _, at in sorted(uploads)] == sorted(at for _, at in uploads)  # same order in both records
    moves = [e for e in events if e.action == "alias.move"]
    periods = list(AliasAssignment.objects.select_related("model", "version").order_by("started_at", "pk"))
    assert len(moves) == len(periods)
    for move, period in zip(moves, periods, strict=True):  # one move per period, in the same order
        assert move.object_repr == f"{period.model.name}@{period.alias}"
        assert move.after["version"] == period.version.version
        assert abs(period.started_at - move.at) < AGREE
        if period.ended_at is not None:  # ended by the next move of the same alias
            successor = next(m for m in moves if m.seq > move.seq and m.object_repr == move.object_repr)
            assert abs(period.ended_at - successor.at) < AGREE


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "jobs": Job.objects.count(),
        "aliases": AliasAssignment.objects.count(),
        "events": AuditEvent.objects.count(),
    }


def test_the_demo_seeds_inspected_models_and_a_second_run_changes_nothing(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: sent.append(args))
    started = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        first = demo()
    finished = timezone.now()
    assert "demo ready" in first
    assert sent == []  # each inspection job had finished before its on-commit enqueue ran

    versions = {f"{v.model.name}:{v.version}": v for v in ModelVersion.objects.select_related("model", "parent")}
    assert set(versions) == {
        "credit-risk:1.0.0",
        "credit-risk:1.1.0",
        "digits-cnn:1.0.0",
        "fraud-gate:0.9.0",
        "ticket-router:2.0.0",
    }
    for label, version in versions.items():
        assert version.status == VersionStatus.READY, (label, version.reason)
        assert version.inspection["parameters"] > 0
        assert version.inspection["saved_with_torch"] == torch.__version__  # from forge_producer.json
        assert version.inspection["dry_run"]["outputs"], label
        assert version.source_commit and version.training_data
        assert Job.objects.get(subject_id=str(version.pk), kind="inspect").status == JobStatus.SUCCEEDED

    retrained = versions["credit-risk:1.1.0"]
    assert retrained.parent == versions["credit-risk:1.0.0"]
    assert retrained.metrics["auc"] > versions["credit-risk:1.0.0"].metrics["auc"] > 0.5
    assert [o["shape"] for o in versions["digits-cnn:1.0.0"].inspection["dry_run"]["outputs"]] == [[2, 10]]
    router_inputs = versions["ticket-router:2.0.0"].inspection["dry_run"]["inputs"]
    assert [i["dtype"] for i in router_inputs] == ["int64", "float32"]
    assert len(versions["fraud-gate:0.9.0"].inspection["dry_run"]["outputs"]) == 2
    credit = RegisteredModel.objects.get(name="credit-risk")
    assert credit.risk_tier == "high" and credit.intended_use and credit.owner.username == "erin"
    assert {t.name for t in credit.tags.all()} == {"credit", "tabular", "pd-model"}

    now = timezone.now()
    assert alias_holder_at(model=credit, alias="champion", at=now).version.version == "1.1.0"
    assert alias_holder_at(model=credit, alias="challenger", at=now).version.version == "1.0.0"
    assert alias_holder_at(model=credit, alias="champion", at=started - timedelta(seconds=1)) is None
    assert AliasAssignment.objects.filter(model=credit).count() == 4
    assert_records_agree(started, finished)

    # Evidence: parity runs (ONNX export passes, the retrained version differs from 1.0.0) and benchmarks.
    assert retrained.onnx and versions["credit-risk:1.0.0"].onnx
    runs = Job.objects.filter(kind__in=["parity", "benchmark"])
    assert {job.status for job in runs} == {JobStatus.SUCCEEDED}
    parity = {
        job.params["reference"]["kind"]: job.result for job in runs.filter(subject_id=str(retrained.pk), kind="parity")
    }
    assert parity["onnx"]["passed"] is True and parity["version"]["passed"] is False
    assert parity["version"]["outputs"][0]["argmax_agreement"] < 1
    benchmarked = {job.subject_label for job in runs.filter(kind="benchmark")}
    assert benchmarked == {"credit-risk:1.0.0", "credit-risk:1.1.0"}
    fraud = runs.get(subject_id=str(versions["fraud-gate:0.9.0"].pk))
    assert fraud.result["reference"]["dtype"] == "bfloat16" and len(fraud.result["outputs"]) == 2

    assert {u: set(user_roles(User.objects.get(username=u))) for u in ("erin", "mo", "olga")} == {
        "erin": {"engineer"},
        "mo": {"manager"},
        "olga": {"officer"},
    }
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert authenticate(username="erin", password="forge-demo-erin") is not None

    seeded = counts()
    again = demo().strip().splitlines()
    assert again[-1] == "demo ready"
    assert all("already" in line for line in again[:-1]), again  # a step may say why it did nothing, no more
    assert counts() == seeded
    assert audit_verify_chain() == (seeded["events"], None)


def test_the_demo_keeps_a_password_someone_changed() -> None:
    call_command("forge_user", "erin", "--role", "engineer", "--password", "my-own-passphrase", stdout=StringIO())
    registry_demo.seed_users(stdout=StringIO())
    assert authenticate(username="erin", password="my-own-passphrase") is not None
    assert authenticate(username="mo", password="forge-demo-mo") is not None


def test_the_demo_refuses_to_seed_public_passwords_in_the_production_profile(settings) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refusing with FORGE_PROFILE=production"):
        call_command("forge_demo", stdout=StringIO())
    assert not User.objects.exists()


CALLS: list[tuple[str, Any, Any]] = []


def step_a(*, stdout: Any, now: Any) -> None:
    CALLS.append(("a", stdout, now))


def step_b(*, stdout: Any, now: Any) -> None:
    CALLS.append(("b", stdout, now))


def test_forge_demo_runs_the_registry_step_first_then_each_apps_in_order(monkeypatch, settings) -> None:
    """The hook other apps plug into (settings.FORGE_DEMO_STEPS): the registry's step always first, then the others
    in the order listed, each once, all with the same clock."""
    CALLS.clear()
    monkeypatch.setattr(registry_demo, "seed", lambda *, stdout, now: CALLS.append(("registry", stdout, now)))
    settings.FORGE_DEMO_STEPS = [
        "tests.models_registry.test_demo.step_b",
        "models_registry.demo.seed",
        "tests.models_registry.test_demo.step_a",
        "tests.models_registry.test_demo.step_b",
    ]
    again = demo().strip().splitlines()
    assert again[-1] == "demo ready"
    assert all("already" in line for line in again[:-1]), again  # a step may say why it did nothing, no more
    assert [name for name, _, _ in CALLS] == ["registry", "b", "a"]
    assert len({id(stdout) for _, stdout, _ in CALLS}) == 1 and len({now for _, _, now in CALLS}) == 1


def test_print_logins_prints_the_table_and_writes_nothing() -> None:
    out = StringIO()
    call_command("forge_demo", "--print-logins", stdout=out)
    text = out.getvalue()
    for username, password in [("erin", "forge-demo-erin"), ("mo", "forge-demo-mo"), ("olga", "forge-demo-olga")]:
        assert username in text and password in text
    assert not User.objects.exists() and not AuditEvent.objects.exists()


def test_print_logins_names_the_port_make_run_serves(monkeypatch) -> None:
    monkeypatch.setenv("FORGE_WEB_PORT", "8001")  # what `make run FORGE_WEB_PORT=8001` exports
    out = StringIO()
    call_command("forge_demo", "--print-logins", stdout=out)
    assert "http://127.0.0.1:8001/accounts/login/" in out.getvalue()
    out = StringIO()
    call_command("forge_demo", "--print-logins", "--port", "8123", stdout=out)
    assert "http://127.0.0.1:8123/accounts/login/" in out.getvalue()
