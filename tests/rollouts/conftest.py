"""A model with a ready champion and a ready challenger, users in each role, and helpers to feed traffic."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from forge_site.models import AuditEvent
from forge_site.roles import Role
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from rollouts.aggregates import ArmWindow
from rollouts.models import Rollout
from rollouts.services import TrafficDelta, rollout_create, rollout_start, traffic_flush
from tests.api.helpers import mlp, temp_upload
from tests.conftest import make_user
from tests.torchscript_models import MLP_SPEC

POSTGRES_ONLY = pytest.mark.skipif(
    "os.environ.get('DATABASE_URL', '').split(':')[0] not in {'postgres', 'postgresql'}",
    reason="concurrency and partial indexes are tested on PostgreSQL",
)


def ready_version(model: RegisteredModel, version: str, owner: User, seed: int = 0) -> ModelVersion:
    mv = version_create(
        model=model, version=version, artifact=temp_upload("m.pt", mlp(seed)), input_spec=MLP_SPEC, created_by=owner
    )
    return version_record_inspection(version_id=mv.pk, ok=True, inspection={"parameters": 1}, reason="")


@dataclass
class Setup:
    model: RegisteredModel
    champion: ModelVersion
    challenger: ModelVersion
    engineer: User
    manager: User
    other_manager: User
    officer: User


@pytest.fixture
def setup(db: None) -> Setup:
    engineer = make_user("erin", Role.ENGINEER)
    manager = make_user("mo", Role.MANAGER)
    other_manager = make_user("max", Role.MANAGER)
    officer = make_user("olga", Role.OFFICER)
    model = model_create(name="credit-risk", owner=engineer)
    champion = ready_version(model, "1.0.0", engineer, seed=0)
    challenger = ready_version(model, "1.1.0", engineer, seed=1)
    alias_set(model=model, alias="champion", version=champion, actor=manager, reason="first champion")
    return Setup(model, champion, challenger, engineer, manager, other_manager, officer)


def draft(setup: Setup, **kwargs: Any) -> Rollout:
    args: dict[str, Any] = {"plan": [5, 25, 50, 100], "actor": setup.engineer}
    args.update(kwargs)
    return rollout_create(model=setup.model, challenger=setup.challenger, **args)


def started(setup: Setup, **kwargs: Any) -> Rollout:
    return rollout_start(rollout=draft(setup, **kwargs), actor=setup.engineer)


def serve(
    rollout: Rollout,
    arm: str,
    requests: int,
    *,
    errors: int = 0,
    latency_ms: float = 5.0,
    successes: int | None = None,
    share: float | None = None,
    writer: str = "serving:test:1",
    minute: Any = None,
) -> None:
    """What a serving process would flush for `requests` requests of one arm in one minute, each without a unit id
    (so each is its own randomised unit for the sample-ratio check)."""
    window = ArmWindow()
    for i in range(requests):
        window.record_request(latency_ms * (1 + (i % 10) / 20), error=i < errors)
        if successes is not None:
            window.record_outcome(success=i < successes)
    share = rollout.challenger_share if share is None else share
    traffic_flush(
        writer=writer,
        deltas=[
            TrafficDelta(
                rollout_id=rollout.pk,
                arm=arm,
                minute=minute or timezone.now(),
                window=window,
                share_sum=requests * share / 100,
                unitless=requests,
                unitless_share_sum=requests * share / 100,
            )
        ],
    )


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def together(*calls: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run each call on its own thread (and database connection), released at once; what they returned and raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors
