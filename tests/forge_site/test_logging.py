"""A refused request is one concise warning line in the server's log; a server error keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR
from tests.forge_site.test_settings import _env

# What Django's request handler logs for a view that raises PermissionDenied, and for one that fails
# (django.core.handlers.exception.response_for_exception), through the LOGGING of forge_site.settings.
LOG_A_403_AND_A_500 = """
import django
django.setup()
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseForbidden, HttpResponseServerError
from django.utils.log import log_response
try:
    raise PermissionDenied("Your role may not do this (model.create).")
except PermissionDenied as exc:
    log_response("Forbidden (Permission denied): %s", "/registry/create/", response=HttpResponseForbidden(),
                 exception=exc)
try:
    raise RuntimeError("kept")
except RuntimeError as exc:
    log_response("%s: %s", "Internal Server Error", "/boom/", response=HttpResponseServerError(), exception=exc)
"""


@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_403_is_logged_once_as_one_line_and_a_500_keeps_its_traceback(tmp_path, debug: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOG_A_403_AND_A_500],
        cwd=BASE_DIR,
        env=_env(tmp_path, FORGE_DEBUG=debug),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    forbidden = [line for line in lines if "Forbidden (Permission denied): /registry/create/" in line]
    assert len(forbidden) == 1 and " WARNING django.request " in forbidden[0]
    assert "PermissionDenied" not in result.stderr  # no traceback for the refusal
    assert sum("Internal Server Error: /boom/" in line for line in lines) == 1
    assert "RuntimeError: kept" in result.stderr  # a server error keeps its traceback
