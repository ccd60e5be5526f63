"""With FORGE_LOG_FORMAT=json every log line is one JSON object a collector can parse: time, level, logger, message,
the request id of the request being served, and the fields the call passed (rollout, version, latency_ms, outcome)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import BASE_DIR
from tests.forge_site.test_settings import _env

LOG_LINES = """
import logging
import django
django.setup()
from forge_site.logs import current_request_id
log = logging.getLogger("rollouts.serving")
current_request_id.set("req-7f3a")
log.info("predict answered", extra={"rollout": 12, "version": "1.1.0", "arm": "challenger", "latency_ms": 1.73,
                                    "outcome": "ok"})
log.warning("a \\"quoted\\"\\nmessage on two lines", extra={"request_id": "explicit-1", "outcome": object()})
log.info("odd values", extra={"latency_ms": float("nan"), "meta": {"arm": "a", "n": [1, 2]}})
log.info("odd inside", extra={"meta": {"scores": [float("inf")]}})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("forge_site.jobs").exception("job %s crashed", 42)
"""


def _run(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOG_LINES],
        cwd=BASE_DIR,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_line_is_a_json_object_with_the_request_fields(tmp_path) -> None:
    result = _run(tmp_path, FORGE_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(entries) == 5
    served, quoted, odd, odd_inside, crashed = entries
    assert served["logger"] == "rollouts.serving" and served["level"] == "INFO"
    assert served["message"] == "predict answered" and served["request_id"] == "req-7f3a"
    assert (served["rollout"], served["version"], served["arm"]) == (12, "1.1.0", "challenger")
    assert served["latency_ms"] == 1.73 and served["outcome"] == "ok"
    assert served["time"].endswith("Z") and len(served["time"]) == len("2026-12-05T18:42:44.113Z")
    assert quoted["message"] == 'a "quoted"\nmessage on two lines' and quoted["request_id"] == "explicit-1"
    assert quoted["outcome"].startswith("<object object")  # what JSON cannot hold is written as text
    assert odd["latency_ms"] == "nan" and odd["meta"] == {"arm": "a", "n": [1, 2]}  # NaN is not JSON; text is
    assert odd_inside["meta"] == "{'scores': [inf]}"
    assert crashed["message"] == "job 42 crashed" and "ZeroDivisionError" in crashed["exception"]


def test_the_production_profile_logs_json_and_the_embedded_one_plain_text(tmp_path) -> None:
    production = _run(tmp_path, FORGE_PROFILE="production", SECRET_KEY="x" * 50, ALLOWED_HOSTS="forge.example.com")
    assert production.returncode == 0, production.stderr
    assert json.loads(production.stderr.splitlines()[0])["message"] == "predict answered"
    embedded = _run(tmp_path)
    assert embedded.returncode == 0, embedded.stderr
    assert " INFO rollouts.serving predict answered" in embedded.stderr.splitlines()[0]


def test_an_unknown_log_format_is_refused_by_name(tmp_path) -> None:
    result = _run(tmp_path, FORGE_LOG_FORMAT="xml")
    assert result.returncode != 0 and "FORGE_LOG_FORMAT must be json or plain, got 'xml'" in result.stderr
