"""Report fixtures: an officer's draft on a model with evidence."""

from __future__ import annotations

import pytest

from tests.governance.helpers import Evidenced, evidenced_model


@pytest.fixture
def evidenced(engineer, manager) -> Evidenced:
    return evidenced_model(engineer=engineer, manager=manager)
