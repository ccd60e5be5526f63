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
    " 'STORAGE': s.STORAGES['artifacts']}))"
)


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "FORGE_STORAGE"}
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
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="forge.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr and "?: (security" not in result.stdout + result.stderr


def test_the_embedded_defaults_need_no_environment(tmp_path: Path) -> None:
    result = _python(tmp_path, PRINT_SETTINGS)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(tmp_path / "var" / "forge.sqlite3")
    assert values["REDIS_URL"] == values["BROKER"] == "redis://127.0.0.1:6379/0"
    assert values["DEBUG"] is True
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


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", DEBUG="false", ALLOWED_HOSTS="forge.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_names_the_variable_with_a_bad_value(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean (true/false), got 'maybe'" in result.stderr
    result = _manage(tmp_path, "check", FORGE_MAX_ARTIFACT_BYTES="2GB")
    assert "FORGE_MAX_ARTIFACT_BYTES must be an integer, got '2GB'" in result.stderr
