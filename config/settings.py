"""Mailpath settings.

Every value comes from the environment (or a `.env` file beside manage.py) through
django-environ. A wrong value stops the process at start-up with a message that names
the variable; a missing one falls back to the embedded default, which runs on one machine
with no servers: SQLite, a file-system Celery broker and the sandbox email backend.
docs/configuration.md lists every setting.
"""

from __future__ import annotations

import base64
import binascii
import re
from ipaddress import ip_network
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")


def _env_bool(name: str, default: bool) -> bool:
    """django-environ treats any unknown word as False; refuse it instead."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"

DEBUG = _env_bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY to a long random value, "
        "or DEBUG=true on a development machine."
    )
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")


def _env_list(name: str, default: list[str]) -> list[str]:
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", [])
_site = env.url("SITE_URL", default="http://127.0.0.1:8000")
if _site.scheme not in {"http", "https"} or not _site.netloc:
    raise ImproperlyConfigured(
        f"SITE_URL={_site.geturl()!r}: use a full URL like https://app.example.com."
    )
SITE_URL = _site.geturl().rstrip("/")

# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, redirect to HTTPS, send HSTS.
BEHIND_TLS_PROXY = _env_bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "anymail",
    "workspaces",
    "contacts",
    "campaigns",
    "journeys",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workspaces.middleware.WorkspaceMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "workspaces.context_processors.workspace_nav",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
try:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailpath.sqlite3'}"),
    }
except (KeyError, ValueError) as exc:
    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL: use postgres://user@host:5432/name or sqlite:///path."
    ) from exc
SUPPORTED_DATABASE_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}
if DATABASES["default"].get("ENGINE") not in SUPPORTED_DATABASE_ENGINES:
    raise ImproperlyConfigured(
        f"DATABASE_URL names {DATABASES['default'].get('ENGINE')!r}: "
        "use postgres://user@host:5432/name or sqlite:///path."
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) serve PostgreSQL; SQLite builds them without the extra column.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Auth -----------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
if LOGIN_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT must be 1 or more.")
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
SIGNUP_FORM_RATE_LIMIT = env.int("SIGNUP_FORM_RATE_LIMIT", default=10)
SIGNUP_FORM_RATE_WINDOW_SECONDS = env.int("SIGNUP_FORM_RATE_WINDOW_SECONDS", default=600)
SIGNUP_FORM_CONFIRM_DAYS = env.int("SIGNUP_FORM_CONFIRM_DAYS", default=7)

SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True

# --- I18n -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="workspaces.sandbox.SandboxEmailBackend")
# SMTP, when EMAIL_BACKEND is Django's SMTP backend: smtp+tls://user:password@host:587
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))  # sets EMAIL_BACKEND to SMTP too
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Mailpath <no-reply@mailpath.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SANDBOX_RETENTION_DAYS = env.int("SANDBOX_RETENTION_DAYS", default=30)
# Anymail settings for a platform-wide ESP backend, as JSON, e.g. {"POSTMARK_SERVER_TOKEN": "…"}
ANYMAIL = env.json("ANYMAIL", default={})
if not isinstance(ANYMAIL, dict):
    raise ImproperlyConfigured('ANYMAIL must be a JSON object, e.g. {"WEBHOOK_SECRET": "u:p"}.')
# Basic auth ("user:password"; comma-separated to rotate) that the installation's own ESP
# account puts in its tracking webhook URLs. Workspaces with their own ESP connection use
# their own secret instead (see docs/sending.md, "Tracking webhooks").
_webhook_secrets = _env_list("ANYMAIL_WEBHOOK_SECRET", [])
for _secret in _webhook_secrets:
    _user, _, _password = _secret.partition(":")
    if not _user or len(_password) < 16:
        raise ImproperlyConfigured(
            "ANYMAIL_WEBHOOK_SECRET: use user:password with a password of 16 characters "
            "or more (comma-separated to accept several while rotating)."
        )
if _webhook_secrets:
    ANYMAIL["WEBHOOK_SECRET"] = _webhook_secrets

# --- Tracking links: open pixel, click redirect, unsubscribe, preference centre -----------
# The address those links start with; another host name only if it reaches this app too.
_tracking = env.url("MAILPATH_TRACKING_URL", default=SITE_URL)
if _tracking.scheme not in {"http", "https"} or not _tracking.netloc:
    raise ImproperlyConfigured(
        f"MAILPATH_TRACKING_URL={_tracking.geturl()!r}: use a full URL like "
        "https://links.example.com."
    )
MAILPATH_TRACKING_URL = _tracking.geturl().rstrip("/")
# An open this soon after sending without a user agent, or a click this soon after
# sending or delivery, is a machine (a privacy proxy or a link scanner), not a person.
MAILPATH_MACHINE_OPEN_SECONDS = env.int("MAILPATH_MACHINE_OPEN_SECONDS", default=60)
MAILPATH_SCANNER_CLICK_SECONDS = env.int("MAILPATH_SCANNER_CLICK_SECONDS", default=10)
# More user-agent fragments (any case) that mark a machine, on top of the built-in list.
MAILPATH_MACHINE_USER_AGENTS = _env_list("MAILPATH_MACHINE_USER_AGENTS", [])
# Networks (CIDR) whose opens are machine opens, e.g. a mail privacy proxy's egress ranges.
MAILPATH_MACHINE_OPEN_NETWORKS = _env_list("MAILPATH_MACHINE_OPEN_NETWORKS", [])
try:
    for _network in MAILPATH_MACHINE_OPEN_NETWORKS:
        ip_network(_network, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(f"MAILPATH_MACHINE_OPEN_NETWORKS: {exc}") from exc
if min(MAILPATH_MACHINE_OPEN_SECONDS, MAILPATH_SCANNER_CLICK_SECONDS) < 0:
    raise ImproperlyConfigured(
        "MAILPATH_MACHINE_OPEN_SECONDS and MAILPATH_SCANNER_CLICK_SECONDS cannot be negative."
    )

# Keys that encrypt workspaces' ESP credentials: comma-separated Fernet keys, the first
# encrypts and all decrypt (rotation). Empty: a key derived from SECRET_KEY.
MAILPATH_ENCRYPTION_KEY = _env_list("MAILPATH_ENCRYPTION_KEY", [])
for _key in MAILPATH_ENCRYPTION_KEY:
    try:
        _key_ok = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except (binascii.Error, ValueError):
        _key_ok = False
    if not _key_ok:
        raise ImproperlyConfigured(
            "MAILPATH_ENCRYPTION_KEY: each key must be 32 url-safe base64-encoded bytes; make "
            'one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        )
# The function that gives a workspace its email connection (tests swap it).
MAILPATH_CONNECTION_FACTORY = env.str(
    "MAILPATH_CONNECTION_FACTORY", default="campaigns.sending.esp.build_connection"
)
if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", MAILPATH_CONNECTION_FACTORY):
    raise ImproperlyConfigured(
        f"MAILPATH_CONNECTION_FACTORY={MAILPATH_CONNECTION_FACTORY!r} is not a dotted path "
        "to a function, e.g. campaigns.sending.esp.build_connection."
    )

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workspaces.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["workspaces.permissions.HasWorkspaceRole"],
    "EXCEPTION_HANDLER": "workspaces.api_base.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "workspaces.pagination.WorkspaceCursorPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema at /api/schema/ and its docs page at /api/docs/ (Swagger UI served
# from our own static files, no CDN). Both are public: they describe the API, not data.
SPECTACULAR_SETTINGS = {
    "TITLE": "Mailpath API",
    "DESCRIPTION": "The REST API (/api/v1/) and the Segment-compatible ingest API (/v1/).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "SubscriptionStatusEnum": "contacts.models.SubscriptionStatus",
        "SettableStatusEnum": "contacts.api.SETTABLE_STATUSES",
        "BulkItemStatusEnum": "contacts.api.BULK_STATUSES",
        "TemplateKindEnum": "campaigns.models.TemplateKind",
        "KindEnum": "contacts.models.SegmentKind",
    },
}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
elif not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: use filesystem://, redis:// or amqp://."
    )
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("default", "send", "analytics")
]
# Task name patterns to queues: sending gets its own workers so a large import or a
# rollup rebuild never delays an email.
CELERY_TASK_ROUTES = {
    # Outgoing webhooks wait on customers' servers: keep them off the send workers.
    "campaigns.tasks.deliver_webhooks": {"queue": "default"},
    "campaigns.tasks.deliver_due_webhooks": {"queue": "default"},
    # Opens and clicks must not wait behind a large send, nor hold one up.
    "campaigns.tasks.record_tracking_hits": {"queue": "default"},
    "campaigns.tasks.*": {"queue": "send"},
    "analytics.tasks.*": {"queue": "analytics"},
}

# The periodic schedule, written to django-celery-beat by `manage.py setup_periodic_tasks`.
# name: (task, every N seconds, queue)
PERIODIC_TASKS = {
    "purge expired invitations": ("workspaces.tasks.purge_expired_invitations", 3600, "default"),
    "prune sandbox inbox": ("workspaces.tasks.prune_sandbox_messages", 3600, "default"),
    "refresh segments": ("contacts.segments.tasks.refresh_all_segments", 3600, "default"),
    # Deferred and retried messages come due without anyone enqueueing: look every minute.
    "deliver queued messages": ("campaigns.tasks.deliver_queued", 60, "send"),
    "reconcile stuck messages": ("campaigns.tasks.reconcile_stuck_messages", 60, "send"),
    # Outgoing webhooks whose retry time has come (and any whose task was lost).
    "deliver due webhooks": ("campaigns.tasks.deliver_due_webhooks", 60, "default"),
}

# --- Sending pipeline (campaigns/sending/deliver.py) ----------------------------------
# Messages one worker claims and delivers at a time (Postmark takes 500 per batch call).
MAILPATH_SEND_BATCH_SIZE = env.int("MAILPATH_SEND_BATCH_SIZE", default=500)
# Most deliver tasks one enqueue starts (one per batch of new messages): about the number
# of send worker processes, so a big send spreads over all of them.
MAILPATH_SEND_TASKS = env.int("MAILPATH_SEND_TASKS", default=4)
# Calls in flight per worker for ESPs without a batch endpoint (one connection each).
MAILPATH_SEND_THREADS = env.int("MAILPATH_SEND_THREADS", default=16)
# Use the ESP's batch endpoint for distinct messages where it has one (Postmark).
MAILPATH_ESP_BATCH_API = _env_bool("MAILPATH_ESP_BATCH_API", default=True)
if not 1 <= MAILPATH_SEND_BATCH_SIZE <= 5000 or MAILPATH_SEND_TASKS < 1:
    raise ImproperlyConfigured(
        "MAILPATH_SEND_BATCH_SIZE must be 1..5000 and MAILPATH_SEND_TASKS at least 1."
    )
if not 1 <= MAILPATH_SEND_THREADS <= 64:
    raise ImproperlyConfigured("MAILPATH_SEND_THREADS must be 1..64.")

# --- Outgoing webhooks (campaigns/sending/outgoing.py, safe_http.py) ---------------------
# Let webhook endpoints be private, loopback or link-local addresses (receivers on the
# installation's own network). Off, a workspace user cannot make the server call internal
# services or the cloud metadata address.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = _env_bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# Seconds one webhook request may take (connect, send, answer), 1..60.
WEBHOOKS_TIMEOUT_SECONDS = env.int("WEBHOOKS_TIMEOUT_SECONDS", default=10)
# Disable an endpoint after this many deliveries in a row failed for good (0: never).
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=20)
if not 1 <= WEBHOOKS_TIMEOUT_SECONDS <= 60 or WEBHOOKS_DISABLE_AFTER_FAILURES < 0:
    raise ImproperlyConfigured(
        "WEBHOOKS_TIMEOUT_SECONDS must be 1..60 and WEBHOOKS_DISABLE_AFTER_FAILURES 0 or more."
    )

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
