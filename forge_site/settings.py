"""Forge settings: one module, every knob from an environment variable with an embedded default."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FORGE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate limit such as `3000/min` as (requests, seconds); `off` turns the limit off."""
    raw = (os.environ.get(name) or default).strip().lower()
    if raw == "off":
        return None
    count, _, period = raw.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in _PERIODS:
        raise ImproperlyConfigured(f"{name} must be a rate like 3000/min (per s, min, hour or day) or off, got {raw!r}")
    return int(count), _PERIODS[period]


def _dev_secret_key() -> str:
    """A generated key kept under var/, so sessions survive restarts of the embedded deployment."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Two profiles. "embedded" (the default) is `make run`: plain HTTP on loopback, a key generated under var/.
# "production" is a deployment behind TLS: HTTPS redirect, Secure cookies, HSTS, and nothing generated or assumed.
PROFILES = ("embedded", "production")
FORGE_PROFILE = os.environ.get("FORGE_PROFILE", "") or "embedded"
if FORGE_PROFILE not in PROFILES:
    raise ImproperlyConfigured(f"FORGE_PROFILE must be one of {', '.join(PROFILES)}, got {FORGE_PROFILE!r}")
PRODUCTION = FORGE_PROFILE == "production"

# Debug pages show URL patterns, tracebacks and settings: only a developer turns them on, and never in production.
DEBUG = env_bool("FORGE_DEBUG", False)
if DEBUG and PRODUCTION:
    raise ImproperlyConfigured("FORGE_DEBUG must be off with FORGE_PROFILE=production")

if PRODUCTION:
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set with FORGE_PROFILE=production (50+ random characters)")
    if not os.environ.get("ALLOWED_HOSTS"):
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set with FORGE_PROFILE=production (the site's host names)")
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "forge_site",
    "models_registry",
    "governance",
    "rollouts",
]

MIDDLEWARE = [
    "forge_site.middleware.ReleaseResponseCyclesMiddleware",  # outermost: it runs after the response has rendered
    "forge_site.observability.middleware.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "forge_site.middleware.RequestIdMiddleware",
    "forge_site.api_middleware.ApiErrorShapeMiddleware",  # inside the request id, outside everything that can fail
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "forge_site.urls"
WSGI_APPLICATION = "forge_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "forge_site.roles.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'forge.sqlite3'}",
        # Persistent connections: opening one (and, on SQLite, setting its pragmas) cost more than a whole list
        # query. Health checks drop a connection the database closed in the meantime. 0 with PgBouncer transaction
        # pooling.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = ["forge_site.auth.RoleAwareModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing STATIC_ROOT, even when it serves from finders
WHITENOISE_USE_FINDERS = True

# Artifacts: content-addressed files. FORGE_STORAGE is a local folder, or s3://bucket/prefix with django-storages.
FORGE_STORAGE = os.environ.get("FORGE_STORAGE", str(VAR_DIR / "artifacts"))
if FORGE_STORAGE.startswith("s3://"):
    _bucket, _, _prefix = FORGE_STORAGE[len("s3://") :].partition("/")
    _artifact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": _bucket, "location": _prefix, "file_overwrite": False},
    }
else:
    _artifact_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": FORGE_STORAGE, "file_permissions_mode": 0o640},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "artifacts": _artifact_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# Uploads stream to disk in large chunks while being hashed; nothing big is held in memory.
FORGE_UPLOAD_DIR = Path(os.environ.get("FORGE_UPLOAD_DIR", VAR_DIR / "uploads"))
FORGE_MAX_ARTIFACT_BYTES = env_int("FORGE_MAX_ARTIFACT_BYTES", 2 * 1024**3)
FORGE_MAX_COMPANION_BYTES = env_int("FORGE_MAX_COMPANION_BYTES", 512 * 1024**2)
FORGE_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_HANDLERS = ["models_registry.artifacts.HashingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = str(FORGE_UPLOAD_DIR)
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Inspection sandbox limits (worker side).
FORGE_INSPECT_TIMEOUT_S = env_int("FORGE_INSPECT_TIMEOUT_S", 120)
FORGE_INSPECT_MEMORY_BYTES = env_int("FORGE_INSPECT_MEMORY_BYTES", 8 * 1024**3)

# Parity and benchmark jobs: a persistent sandbox process per worker process holds loaded artifacts (LRU by SHA-256).
FORGE_EVAL_TIME_LIMIT_S = env_int("FORGE_EVAL_TIME_LIMIT_S", 900)  # default deadline of one run
FORGE_EVAL_MAX_TIME_LIMIT_S = env_int("FORGE_EVAL_MAX_TIME_LIMIT_S", 3600)  # the most a request may ask for
FORGE_MODEL_CACHE_ENTRIES = env_int("FORGE_MODEL_CACHE_ENTRIES", 4)
FORGE_SANDBOX_MEMORY_BYTES = env_int("FORGE_SANDBOX_MEMORY_BYTES", 16 * 1024**3)  # CPU-only hosts; 0 = no limit

# `manage.py forge_demo` runs these `seed(*, stdout, now)` functions in order, the registry's always first; an app
# appends its own step here (governance, rollouts) instead of editing the registry's.
FORGE_DEMO_STEPS = [
    "models_registry.demo.seed",
    "governance.monitoring_demo.seed",  # a baseline and a week of traffic in which three features drift
    "rollouts.demo.seed",  # a running rollout with traffic and outcomes, a promotion request waiting
    "governance.demo.seed",  # last, so its finalized report cites what the steps before it recorded
]

# Celery: Redis is the broker only; the database holds every job's state.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "forge_site.reap_stale_jobs", "schedule": 60.0, "options": {"queue": "default"}},
    # Each version's monitor has its own interval; this entry starts the ones that are due (governance/monitors).
    "governance-monitors-due": {"task": "governance.monitors_due", "schedule": 60.0, "options": {"queue": "default"}},
    "sweep-alert-deliveries": {
        "task": "governance.sweep_alert_deliveries",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    "evaluate-alert-rules": {
        "task": "governance.evaluate_alert_rules",
        "schedule": float(env_int("FORGE_ALERT_EVALUATE_EVERY_S", 300)),
        "options": {"queue": "default"},
    },
    "check-rollouts": {"task": "rollouts.check_rollouts", "schedule": 60.0, "options": {"queue": "default"}},
}
FORGE_JOB_HEARTBEAT_S = env_int("FORGE_JOB_HEARTBEAT_S", 30)  # a running job writes its heartbeat this often
FORGE_JOB_HEARTBEAT_STALE_S = env_int("FORGE_JOB_HEARTBEAT_STALE_S", 900)
FORGE_JOB_QUEUED_STALE_S = env_int("FORGE_JOB_QUEUED_STALE_S", 600)
FORGE_JOB_MAX_ATTEMPTS = env_int("FORGE_JOB_MAX_ATTEMPTS", 3)
if FORGE_JOB_HEARTBEAT_S < 1 or FORGE_JOB_QUEUED_STALE_S < 1 or FORGE_JOB_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "FORGE_JOB_HEARTBEAT_S, FORGE_JOB_QUEUED_STALE_S and FORGE_JOB_MAX_ATTEMPTS must be at least 1"
    )
if FORGE_JOB_HEARTBEAT_STALE_S < 2 * FORGE_JOB_HEARTBEAT_S:
    # The reaper takes a job whose heartbeat is older than the stale setting for one whose worker died. Beats come
    # every FORGE_JOB_HEARTBEAT_S, a little later when a batch is long; a stale setting under two intervals would
    # re-queue jobs that are running well, and run them twice.
    raise ImproperlyConfigured(
        f"FORGE_JOB_HEARTBEAT_STALE_S ({FORGE_JOB_HEARTBEAT_STALE_S} s) must be at least twice "
        f"FORGE_JOB_HEARTBEAT_S ({FORGE_JOB_HEARTBEAT_S} s): a running job writes its heartbeat every "
        "FORGE_JOB_HEARTBEAT_S, and a job whose heartbeat is older than the stale setting is taken for lost."
    )

FORGE_TOKEN_DEFAULT_DAYS = env_int("FORGE_TOKEN_DEFAULT_DAYS", 90)

# Rate limits (forge_site.throttles; the numbers and why in docs/operations.md). Counters live in the `throttle`
# cache: Redis, shared by every web process (LocMemCache would count per process), in its own database number so
# that it never mixes with the broker's queues; unreachable, it lets requests through and logs it.
FORGE_CACHE_URL = os.environ.get("FORGE_CACHE_URL") or urlsplit(REDIS_URL)._replace(path="/1").geturl()
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": FORGE_CACHE_URL,
        "KEY_PREFIX": "forge",
        # Loopback Redis refuses at once when it is down; a remote one that stops answering must not hold a request.
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    },
}
FORGE_THROTTLE_RATES = {
    "user": env_rate("FORGE_THROTTLE_USER", "3000/min"),
    "anon": env_rate("FORGE_THROTTLE_ANON", "300/min"),
    "machine": env_rate("FORGE_THROTTLE_MACHINE", "6000/s"),
}
# Proxies in front of the web processes that append the client's address to X-Forwarded-For (0: use REMOTE_ADDR).
FORGE_TRUSTED_PROXIES = env_int("FORGE_TRUSTED_PROXIES", 0)
# Login lockout: this many failed sign-ins for one username, or from one address, within the window lock that
# username or address out for FORGE_LOGIN_LOCKOUT_S, correct password or not.
FORGE_LOGIN_MAX_FAILURES_PER_USER = env_int("FORGE_LOGIN_MAX_FAILURES_PER_USER", 5)
FORGE_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("FORGE_LOGIN_MAX_FAILURES_PER_ADDRESS", 50)
FORGE_LOGIN_FAILURE_WINDOW_S = env_int("FORGE_LOGIN_FAILURE_WINDOW_S", 900)
FORGE_LOGIN_LOCKOUT_S = env_int("FORGE_LOGIN_LOCKOUT_S", 900)
# Failed API-token authentications from one address within the window, before further failures answer 429.
FORGE_TOKEN_MAX_FAILURES_PER_ADDRESS = env_int("FORGE_TOKEN_MAX_FAILURES_PER_ADDRESS", 100)

# NIST AI RMF report PDFs (governance): the fonts embedded in every PDF (Debian's fonts-dejavu-core).
FORGE_REPORT_FONT_DIR = os.environ.get("FORGE_REPORT_FONT_DIR", "/usr/share/fonts/truetype/dejavu")
# Alerts (governance): where notifications may go, how they are delivered, how secrets are kept (operations.md).
FORGE_PUBLIC_URL = os.environ.get("FORGE_PUBLIC_URL", "").rstrip("/")  # links in notifications; none when empty
FORGE_SECRETS_KEYS = env_list("FORGE_SECRETS_KEYS", [])  # Fernet keys, newest first; empty: derived from SECRET_KEY
for _key in FORGE_SECRETS_KEYS:
    try:
        _key_ok = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except (ValueError, binascii.Error):
        _key_ok = False
    if not _key_ok:
        raise ImproperlyConfigured(
            "FORGE_SECRETS_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)"
        )
FORGE_ALERT_ALLOW_LOOPBACK = env_bool("FORGE_ALERT_ALLOW_LOOPBACK", False)  # tests and development only
FORGE_ALERT_ALLOWED_NETWORKS = env_list("FORGE_ALERT_ALLOWED_NETWORKS", [])  # private networks destinations may use
for _network in FORGE_ALERT_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"FORGE_ALERT_ALLOWED_NETWORKS: {exc}") from exc
FORGE_ALERT_CA_BUNDLE = os.environ.get("FORGE_ALERT_CA_BUNDLE") or None  # None: the system's trust store
FORGE_ALERT_DNS_TIMEOUT_S = env_float("FORGE_ALERT_DNS_TIMEOUT_S", 2.0)
FORGE_ALERT_CONNECT_TIMEOUT_S = env_float("FORGE_ALERT_CONNECT_TIMEOUT_S", 3.0)
FORGE_ALERT_READ_TIMEOUT_S = env_float("FORGE_ALERT_READ_TIMEOUT_S", 5.0)
FORGE_ALERT_TOTAL_TIMEOUT_S = env_float("FORGE_ALERT_TOTAL_TIMEOUT_S", 10.0)
FORGE_ALERT_MAX_ATTEMPTS = env_int("FORGE_ALERT_MAX_ATTEMPTS", 6)
FORGE_ALERT_RETRY_BASE_S = env_float("FORGE_ALERT_RETRY_BASE_S", 30.0)  # then doubling: 30 s, 1, 2, 4, 8 min
FORGE_ALERT_RETRY_MAX_S = env_float("FORGE_ALERT_RETRY_MAX_S", 3600.0)  # also the most a Retry-After is waited
FORGE_ALERT_DEFAULT_COOLDOWN_S = env_int("FORGE_ALERT_DEFAULT_COOLDOWN_S", 3600)  # alert_raise without a rule

# Monitoring (issue 12): baselines, ingestion, drift runs. See docs/drift.md.
FORGE_BASELINE_MAX_ROWS = env_int("FORGE_BASELINE_MAX_ROWS", 5_000_000)
FORGE_DRIFT_RAW_ROW_LIMIT = env_int("FORGE_DRIFT_RAW_ROW_LIMIT", 2_000_000)  # above: drift from the hourly sketches
FORGE_LABEL_JOIN_LOOKBACK_DAYS = env_int("FORGE_LABEL_JOIN_LOOKBACK_DAYS", 30)
FORGE_INGEST_MAX_JSON_ROWS = env_int("FORGE_INGEST_MAX_JSON_ROWS", 10_000)
# Data files (baselines, inference logs, drift uploads: multipart field "file") are streamed to disk and read in
# batches, so they may be far larger than a companion file.
FORGE_MAX_DATA_FILE_BYTES = env_int("FORGE_MAX_DATA_FILE_BYTES", 16 * 1024**3)
FORGE_UPLOAD_FIELD_LIMITS = {"file": FORGE_MAX_DATA_FILE_BYTES}
# Request kinds the job sandbox takes besides parity and benchmark: {kind: "package.module:function"}, Django-free
# functions the sandbox child imports (the allow-list: it imports nothing else). See models_registry/sandbox/.
FORGE_SANDBOX_HANDLERS = {"score_baseline": "governance.drift.scoring:score_baseline"}
# Called as hook(monitor=..., job=...) after each monitor run that succeeded (alert rules plug in here).
FORGE_MONITOR_RESULT_HOOKS = env_list(
    "FORGE_MONITOR_RESULT_HOOKS", ["governance.services.alerts.alert_rules_monitor_hook"]
)
# Registry page extension points (models_registry/templatetags/registry_extensions.py): apps above add to them.
FORGE_VERSION_BADGES = ["governance.badges.drift_badges"]
FORGE_VERSION_LINKS = ["governance.badges.monitoring_links"]

# Rollouts: where the serving process answers predict (the rollout JSON's predict_url).
FORGE_SERVING_URL = os.environ.get("FORGE_SERVING_URL", "http://127.0.0.1:8001")
# The serving process (rollouts/serving/, docs/operations.md "Serving"): the deadline of one model call, how often
# it re-reads a rollout's revision, how long a verified token is trusted, how many models it keeps loaded, and the
# batches in which it flushes per-arm counts and inference log rows (a crash loses at most one buffer of rows).
FORGE_SERVING_DEADLINE_MS = env_int("FORGE_SERVING_DEADLINE_MS", 1000)
FORGE_SERVING_REFRESH_MS = env_int("FORGE_SERVING_REFRESH_MS", 1000)
FORGE_SERVING_TOKEN_CACHE_S = env_int("FORGE_SERVING_TOKEN_CACHE_S", 30)
FORGE_SERVING_MODEL_CACHE = env_int("FORGE_SERVING_MODEL_CACHE", 8)
FORGE_SERVING_FLUSH_MS = env_int("FORGE_SERVING_FLUSH_MS", 5000)
FORGE_SERVING_LOG_BATCH = env_int("FORGE_SERVING_LOG_BATCH", 500)
FORGE_SERVING_LOG_FLUSH_MS = env_int("FORGE_SERVING_LOG_FLUSH_MS", 2000)
FORGE_SERVING_LOG_BUFFER = env_int("FORGE_SERVING_LOG_BUFFER", 10_000)
FORGE_SERVING_TORCH_THREADS = env_int("FORGE_SERVING_TORCH_THREADS", 1)
# One log line per answered predict (logger rollouts.serving.requests: request id, rollout, version, arm, latency,
# outcome), JSON with FORGE_LOG_FORMAT=json; about 15 µs a request (benchmarks/observe_cost.py).
FORGE_SERVING_REQUEST_LOG = env_bool("FORGE_SERVING_REQUEST_LOG", True)
# GET /api/v1/rollouts/{id}/gateway/?target=kserve: where the gateway's storage keeps a version ({model}, {version},
# {sha256}), written into the InferenceService's storageUri.
FORGE_GATEWAY_STORAGE_URI = os.environ.get("FORGE_GATEWAY_STORAGE_URI", "s3://models/{model}/{version}/model.pt")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "forge_site.tokens.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["forge_site.roles.ActionPermission"],
    "DEFAULT_SCHEMA_CLASS": "forge_site.schema.ForgeAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "forge_site.pagination.ForgePageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "forge_site.api.exception_handler",
    # JSON only: the schema promises JSON bodies, and a form-encoded one would be read by other rules (every value a
    # string). The version upload names its own parser (multipart).
    "DEFAULT_PARSER_CLASSES": ["forge_site.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "forge_site.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "forge_site.throttles.UserThrottle",
        "forge_site.throttles.AnonThrottle",
        "forge_site.throttles.MachineThrottle",
    ],
    "NUM_PROXIES": FORGE_TRUSTED_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Forge API",
    "DESCRIPTION": "Model registry, evidence and rollouts for governed PyTorch models.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, so a required string says minLength 1 there and not in responses.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "forge_site.schema.error_responses"],
    # several resources have a `status` of their own choices: each enum gets its own name
    "ENUM_NAME_OVERRIDES": {
        "ReportStatusEnum": "governance.models.reports.ReportStatus",
        "SubcategoryStatusEnum": "governance.nist_rmf.mapping.Status",
        "AlertSeverityEnum": "governance.models.alerts.Severity",
        "AlertStatusEnum": "governance.models.alerts.AlertStatus",
        "AlertDeliveryStatusEnum": "governance.models.alerts.DeliveryStatus",
        "AlertDestinationKindEnum": "governance.models.alerts.DestinationKind",
    },
}

# Observability (docs/operations.md): log lines as JSON objects (production) or plain text (a developer's terminal);
# who may read /metrics: "loopback" (this host, not through a proxy), "token" (Bearer FORGE_METRICS_TOKEN only), "open".
FORGE_LOG_FORMAT = os.environ.get("FORGE_LOG_FORMAT", "") or ("json" if PRODUCTION else "plain")
if FORGE_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"FORGE_LOG_FORMAT must be json or plain, got {FORGE_LOG_FORMAT!r}")
FORGE_METRICS_ACCESS = os.environ.get("FORGE_METRICS_ACCESS", "") or ("token" if PRODUCTION else "loopback")
if FORGE_METRICS_ACCESS not in {"loopback", "token", "open"}:
    raise ImproperlyConfigured(f"FORGE_METRICS_ACCESS must be loopback, token or open, got {FORGE_METRICS_ACCESS!r}")
FORGE_METRICS_TOKEN = os.environ.get("FORGE_METRICS_TOKEN", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "forge_site.logs.JsonFormatter"},
    },
    "filters": {"client_error_without_traceback": {"()": "forge_site.logs.ClientErrorWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": FORGE_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers on "django" (a console one when DEBUG is on) wrote every record a second time
        # beside the root's; everything goes through the root's handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_error_without_traceback"]},
        "django.security.DisallowedHost": {"filters": ["client_error_without_traceback"]},
        "django.server": {"level": "WARNING"},
        # WeasyPrint logs every layout step at INFO (a line per page of every report PDF)
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Sent by both profiles (Django's defaults, stated here so that a change is a visible decision).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Content-Security-Policy: every script, style, image and font comes from this origin (static/, no CDN), and no
# page runs inline script, inline style or eval (JS in static/js/, data through json_script, plotly's and htmx's
# styles in static files). Swagger UI (/api/docs/) adds data: images for its icons (forge_site.urls).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # A load balancer probes (and Prometheus scrapes) over plain HTTP inside the network; a redirect would fail them.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
