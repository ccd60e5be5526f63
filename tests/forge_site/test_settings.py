"""Settings come from the environment: production settings pass `check --deploy`; bad values fail clearly."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import BASE_DIR

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "db = s.DATABASES['default']; "
    "print(json.dumps({k: db.get(k) for k in ('ENGINE', 'NAME', 'USER', 'PASSWORD', 'HOST', 'PORT')}"
    " | {'REDIS_URL': s.REDIS_URL, 'BROKER': s.CELERY_BROKER_URL, 'DEBUG': s.DEBUG, 'HOSTS': s.ALLOWED_HOSTS,"
    " 'STORAGE': s.STORAGES['artifacts'], 'PROFILE': s.FORGE_PROFILE,"
    " 'SECURE': [getattr(s, n) for n in ('SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE')],"
    " 'HSTS': s.SECURE_HSTS_SECONDS}))"
)


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "FORGE_DEBUG", "FORGE_PROFILE", "SECRET_KEY", "ALLOWED_HOSTS"}
        | {"FORGE_STORAGE"}
    }
    env.update(DJANGO_SETTINGS_MODULE="forge_site.settings", FORGE_VAR_DIR=str(tmp_path / "var"), **overrides)
    return env


def _python(tmp_path: Path, code: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _manage(tmp_path: Path, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_check_deploy_without_warnings(tmp_path: Path) -> None:
    result = _manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        FORGE_PROFILE="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="forge.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr and "?: (security" not in result.stdout + result.stderr


def test_the_production_profile_turns_on_https_and_secure_cookies(tmp_path: Path) -> None:
    production = {"FORGE_PROFILE": "production", "SECRET_KEY": "k" * 60, "ALLOWED_HOSTS": "forge.example.com"}
    values = json.loads(_python(tmp_path, PRINT_SETTINGS, **production).stdout)
    assert (values["PROFILE"], values["DEBUG"], values["SECURE"], values["HSTS"]) == (
        "production",
        False,
        [True, True, True],
        31_536_000,
    )


def test_debug_is_off_and_make_run_serves_plain_http_without_any_variable(tmp_path: Path) -> None:
    values = json.loads(_python(tmp_path, PRINT_SETTINGS).stdout)
    # The embedded profile (make run) on 127.0.0.1: no debug pages, and a browser, curl and a client all work over
    # plain HTTP (no redirect to HTTPS, no Secure-only cookies, no HSTS that would pin localhost to HTTPS).
    assert (values["PROFILE"], values["DEBUG"], values["SECURE"], values["HSTS"]) == (
        "embedded",
        False,
        [False, False, False],
        0,
    )
    assert json.loads(_python(tmp_path, PRINT_SETTINGS, FORGE_DEBUG="1").stdout)["DEBUG"] is True


def test_the_production_profile_refuses_debug_and_needs_its_hosts(tmp_path: Path) -> None:
    key = "k" * 60
    result = _manage(tmp_path, "check", FORGE_PROFILE="production", SECRET_KEY=key)
    assert result.returncode != 0 and "ALLOWED_HOSTS must be set with FORGE_PROFILE=production" in result.stderr
    result = _manage(
        tmp_path, "check", FORGE_PROFILE="production", SECRET_KEY=key, ALLOWED_HOSTS="f.example", FORGE_DEBUG="1"
    )
    assert result.returncode != 0 and "FORGE_DEBUG must be off with FORGE_PROFILE=production" in result.stderr
    result = _manage(tmp_path, "check", FORGE_PROFILE="staging")
    assert "FORGE_PROFILE must be one of embedded, production, got 'staging'" in result.stderr


def test_it_warns_that_the_old_debug_variable_is_not_read(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", DEBUG="false")
    assert result.returncode == 0, result.stderr
    assert "forge.W001" in result.stderr and "FORGE_PROFILE=production" in result.stderr


def test_the_embedded_defaults_need_no_environment(tmp_path: Path) -> None:
    result = _python(tmp_path, PRINT_SETTINGS)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(tmp_path / "var" / "forge.sqlite3")
    assert values["REDIS_URL"] == values["BROKER"] == "redis://127.0.0.1:6379/0"
    assert values["DEBUG"] is False
    assert values["STORAGE"]["OPTIONS"]["location"] == str(tmp_path / "var" / "artifacts")
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0  # the generated key is private


def test_database_url_selects_postgresql(tmp_path: Path) -> None:
    result = _python(tmp_path, PRINT_SETTINGS, DATABASE_URL="postgres://forge:s3cret@db.internal:6543/forge_prod")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert (values["NAME"], values["USER"], values["PASSWORD"]) == ("forge_prod", "forge", "s3cret")
    assert (values["HOST"], values["PORT"]) == ("db.internal", 6543)


def test_redis_url_and_s3_storage_come_from_the_environment(tmp_path: Path) -> None:
    result = _python(
        tmp_path,
        PRINT_SETTINGS,
        REDIS_URL="redis://cache.internal:6380/2",
        FORGE_STORAGE="s3://forge-artifacts/prod/models",
        ALLOWED_HOSTS="forge.example.com, forge-2.example.com",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["REDIS_URL"] == values["BROKER"] == "redis://cache.internal:6380/2"
    assert values["STORAGE"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert values["STORAGE"]["OPTIONS"]["bucket_name"] == "forge-artifacts"
    assert values["STORAGE"]["OPTIONS"]["location"] == "prod/models"
    assert values["HOSTS"] == ["forge.example.com", "forge-2.example.com"]


def test_it_refuses_to_start_without_a_secret_key_in_the_production_profile(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", FORGE_PROFILE="production", ALLOWED_HOSTS="forge.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set with FORGE_PROFILE=production" in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # nothing generated behind the operator's back


def test_it_names_the_variable_with_a_bad_value(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", FORGE_DEBUG="maybe")
    assert result.returncode != 0
    assert "FORGE_DEBUG must be a boolean (true/false), got 'maybe'" in result.stderr
    result = _manage(tmp_path, "check", FORGE_MAX_ARTIFACT_BYTES="2GB")
    assert "FORGE_MAX_ARTIFACT_BYTES must be an integer, got '2GB'" in result.stderr


def test_it_refuses_a_stale_period_that_a_healthy_job_s_heartbeat_would_not_beat(tmp_path: Path) -> None:
    """A job beats every FORGE_JOB_HEARTBEAT_S; a stale period shorter than two beats (a 30 s gap was seen) would
    have the reaper re-queue jobs that are running well, and run them twice."""
    result = _manage(tmp_path, "check", FORGE_JOB_HEARTBEAT_STALE_S="30")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "FORGE_JOB_HEARTBEAT_STALE_S (30 s) must be at least twice FORGE_JOB_HEARTBEAT_S (30 s)" in result.stderr
    result = _manage(tmp_path, "check", FORGE_JOB_HEARTBEAT_STALE_S="120", FORGE_JOB_HEARTBEAT_S="90")
    assert "FORGE_JOB_HEARTBEAT_STALE_S (120 s) must be at least twice FORGE_JOB_HEARTBEAT_S (90 s)" in result.stderr
    result = _manage(tmp_path, "check", FORGE_JOB_HEARTBEAT_STALE_S="60", FORGE_JOB_HEARTBEAT_S="30")
    assert result.returncode == 0, result.stderr
