"""Settings for the media-verification service, read from the environment.

With no environment set everything runs embedded on one machine: a SQLite file database,
kombu's filesystem transport as the Celery broker and media under ``var/``. Real deployments
set ``DATABASE_URL``, ``CELERY_BROKER_URL`` and, for shared storage, ``AWS_STORAGE_BUCKET_NAME``.
"""

import os
import secrets
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from verify.checks import NEW_KEY_HINT, is_loopback_host, secret_key_weakness
from verify.fetching.egress import allowed_address_parse

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_positive_int(name: str, default: int) -> int:
    """Return the integer setting ``name``; raise ImproperlyConfigured unless it is > 0."""
    value = env.int(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value}")
    return value


def env_positive_float(name: str, default: float) -> float:
    """Return the float setting ``name``; raise ImproperlyConfigured unless it is > 0."""
    value = env.float(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, got {value}")
    return value


def local_secret_key(path: Path) -> str:
    """Return the key stored at ``path``, creating it (random, mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # the web process and the worker may race; the first key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def env_rate(name: str, default: str) -> str:
    """Return the throttle rate ``name`` ("N/s", "N/m", "N/h" or "N/d"); raise ImproperlyConfigured if malformed."""
    value = env.str(name, default=default)
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) <= 0 or period[:1] not in {"s", "m", "h", "d"}:
        raise ImproperlyConfigured(f"{name} must look like 600/m (requests per s, m, h or d), got {value!r}")
    return value


VAR_DIR = Path(env.str("VERIFY_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Without DJANGO_SECRET_KEY the service signs with a key of its own under var/: good for this
# machine's loopback, never for a deployment, which is refused below and by `check --deploy`.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
VERIFY_SECRET_KEY_GENERATED = not SECRET_KEY
if VERIFY_SECRET_KEY_GENERATED:
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")
_REMOTE_HOSTS = [host for host in ALLOWED_HOSTS if not is_loopback_host(host)]
if not DEBUG and _REMOTE_HOSTS:
    _weakness = "DJANGO_SECRET_KEY is not set" if VERIFY_SECRET_KEY_GENERATED else secret_key_weakness(SECRET_KEY)
    if _weakness:
        raise ImproperlyConfigured(
            f"Refusing to serve {', '.join(_REMOTE_HOSTS)} (DJANGO_ALLOWED_HOSTS): {_weakness}. {NEW_KEY_HINT}"
        )

# --- HTTPS ----------------------------------------------------------------------------------
# Off by default: the embedded service answers plain HTTP on loopback. A deployment behind TLS
# turns them on (docs/security.md, "Production settings").
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
_proxy_ssl_header = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1]) if _proxy_ssl_header else None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "verify",
    "workflows",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, which reads the form: an oversized desk form is answered 413/400, not a 500.
    "verify.uploads.FormLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "workflows.time_zones.UserTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

# --- brute force ----------------------------------------------------------------------------
# AxesBackend first: it refuses a locked-out username from an address before any password is
# checked. AXES_FAILURE_LIMIT failures from one address for one username lock that pair out
# for AXES_COOLOFF_TIME; `manage.py axes_reset` unlocks.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses only; ModelBackend checks the password
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_positive_int("DJANGO_AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_positive_int("DJANGO_AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_COOLOFF_MESSAGE = (
    f"Too many failed logins: this account is locked for {AXES_COOLOFF_TIME.total_seconds() / 60:g} minutes "
    "from your address. Try again later, or ask an administrator to unlock it."
)

# --- content security policy ----------------------------------------------------------------
# Scripts only from this origin: no inline script anywhere. Inline styles stay allowed: the
# admin's change list and the Swagger UI page each carry a small <style> block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- cache ----------------------------------------------------------------------------------
# API throttles and the like count here. The default is per process; a deployment with more than
# one web process sets CACHE_URL (e.g. redis://redis:6379/1) so that they share the counts.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

ROOT_URLCONF = "verify.urls"
WSGI_APPLICATION = "verify.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'verify.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: WAL lets readers run beside the writer,
    # IMMEDIATE transactions take the write lock up front instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-verify.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that costs no round trip on a quiet connection.
    DATABASES["default"]["ENGINE"] = "verify.postgres"
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement run five times on a connection is
        # prepared: PostgreSQL stops planning the same polling queries again and again.
        # Turn off behind a transaction-mode pooler that cannot keep prepared statements.
        DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
    if not env.bool("DATABASE_JIT", default=False):
        # PostgreSQL's JIT compiles a query whose estimated cost is high, even when it runs in
        # milliseconds: the visibility subqueries of an analyst's case list and search cost
        # 3-6 s of compiling each (benchmark --mode search). Off for this connection only.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    if env.bool("DATABASE_POOL", default=False):
        # Django's own pool (psycopg-pool) in place of one persistent connection per process, for
        # threaded or ASGI servers. Sync gunicorn workers and prefork Celery children hold one
        # connection at a time; docs/benchmark.md ("Status polling") compares the two for them.
        DATABASES["default"].update({"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0})
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_positive_int("DATABASE_POOL_MAX_SIZE", 4),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The zone the desk shows times in for users who chose none; stored times are always UTC.
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(f"DJANGO_TIME_ZONE must be an IANA zone name such as Europe/Kyiv, got {TIME_ZONE!r}")
USE_I18N = True
USE_TZ = True

# --- files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never routed: files are served by authenticated API views only

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
_default_storage: dict[str, Any]
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "file_permissions_mode": 0o440},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "verify.staticfiles.IncrementalCompressedStaticFilesStorage"},
}

FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default="") or None
FILE_UPLOAD_HANDLERS = ["verify.uploads.HashingUploadHandler"]
FILE_UPLOAD_PERMISSIONS = 0o440

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workflows.api.authentication.RoleTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "verify.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "verify.api.errors.api_exception_handler",
    # A ceiling against runaway scripts, not a login guard: a request without valid credentials is
    # refused (401) before throttles run. Rates are N/s, N/m, N/h or N/d, counted in CACHES.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("DJANGO_API_THROTTLE_ANON", "60/m"),
        "user": env_rate("DJANGO_API_THROTTLE_USER", "1000/s"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Media verification API",
    "DESCRIPTION": "Submit claimed footage, follow its analysis and read the evidence.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env.str("VERIFY_BROKER_DIR", default=str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu looks at the queue folder this often when it is empty (its default is 1 s, which a
        # job waits for half of on average); docs/benchmark.md ("End to end") measures the idle cost.
        "polling_interval": env_positive_float("VERIFY_BROKER_POLL_INTERVAL_S", 0.1),
    }
else:
    # An unacknowledged message comes back only after the visibility timeout, so it must
    # outlast the longest analysis or a slow job would run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_positive_int("CELERY_VISIBILITY_TIMEOUT_S", 2 * 3600),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # job state lives in the database, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env.str("VERIFY_DEFAULT_QUEUE", default="celery")
VERIFY_ANALYSIS_QUEUE = env.str("VERIFY_ANALYSIS_QUEUE", default="analysis")
CELERY_TASK_ROUTES = {"verify.tasks.analysis_run_task": {"queue": VERIFY_ANALYSIS_QUEUE}}
# Declared, so that a bare `celery -A verify worker` consumes every queue the project uses;
# `-Q analysis` is an opt-in for a dedicated pool.
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(VERIFY_ANALYSIS_QUEUE))
CELERY_TASK_ALWAYS_EAGER = False

# --- analysis -------------------------------------------------------------------------------
FFMPEG_BINARY = env.str("FFMPEG_BINARY", default="ffmpeg")
FFPROBE_BINARY = env.str("FFPROBE_BINARY", default="ffprobe")
VERIFY_FFPROBE_TIMEOUT_S = env_positive_float("VERIFY_FFPROBE_TIMEOUT_S", 60.0)
VERIFY_FFMPEG_TIMEOUT_S = env_positive_float("VERIFY_FFMPEG_TIMEOUT_S", 1800.0)
VERIFY_MAX_KEYFRAMES = env_positive_int("VERIFY_MAX_KEYFRAMES", 200)
VERIFY_KEYFRAME_INTERVAL_S = env_positive_float("VERIFY_KEYFRAME_INTERVAL_S", 10.0)
# Text in keyframes (verify.ocr): Tesseract languages joined by "+"; empty turns OCR off.
VERIFY_OCR_LANGUAGES = env.str("VERIFY_OCR_LANGUAGES", default="eng+ukr+rus+ara")
VERIFY_OCR_CONFIDENCE_FLOOR = env_positive_float("VERIFY_OCR_CONFIDENCE_FLOOR", 70.0)
VERIFY_TESSDATA_DIR = env.str("VERIFY_TESSDATA_DIR", default="/usr/share/tesseract-ocr/5/tessdata")
# A cut is a scene score above VERIFY_SCENE_THRESHOLD on a small grey copy of the frames;
# full-size frames scoring above the lower candidate threshold are written so that the first
# frame after every cut is at hand without a second decoding pass.
VERIFY_SCENE_THRESHOLD = env_positive_float("VERIFY_SCENE_THRESHOLD", 0.3)
VERIFY_SCENE_CANDIDATE_THRESHOLD = env_positive_float("VERIFY_SCENE_CANDIDATE_THRESHOLD", 0.08)
VERIFY_MIN_SHOT_S = env_positive_float("VERIFY_MIN_SHOT_S", 0.5)
# The cores this process may run on (sched_getaffinity is Linux-only; elsewhere all of them).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# Decoder threads in the keyframe pass: two more than the cores keep the decoder busy while
# ffmpeg's main thread runs the filters (ffmpeg itself takes cores + 1, and at most 16).
VERIFY_DECODER_THREADS = env_positive_int("VERIFY_DECODER_THREADS", min(_CORES + 2, 16))
# Two neighbouring frames whose 64-bit pHashes differ in at most this many bits are the same picture.
VERIFY_NEAR_DUPLICATE_BITS = env.int("VERIFY_NEAR_DUPLICATE_BITS", default=6)
VERIFY_ANALYSIS_MODE = env.str("VERIFY_ANALYSIS_MODE", default="full")
if VERIFY_ANALYSIS_MODE not in {"full", "fast"}:
    raise ImproperlyConfigured("VERIFY_ANALYSIS_MODE must be 'full' or 'fast'")
VERIFY_MAX_UPLOAD_BYTES = env_positive_int("VERIFY_MAX_UPLOAD_BYTES", 4 * 1024**3)
VERIFY_ANALYSIS_MAX_ATTEMPTS = env_positive_int("VERIFY_ANALYSIS_MAX_ATTEMPTS", 3)

# --- untrusted input and job recovery ---
# Gates checked on the probe before anything is decoded; each refusal has its own error code.
VERIFY_MAX_FRAME_PIXELS = env_positive_int("VERIFY_MAX_FRAME_PIXELS", 50_000_000)  # 8K video, 48 MP photos
VERIFY_MAX_FRAME_RATE_FPS = env_positive_float("VERIFY_MAX_FRAME_RATE_FPS", 240.0)
VERIFY_MAX_DURATION_S = env_positive_float("VERIFY_MAX_DURATION_S", 4 * 3600.0)
VERIFY_MAX_STREAMS = env_positive_int("VERIFY_MAX_STREAMS", 64)
VERIFY_MAX_METADATA_BYTES = env_positive_int("VERIFY_MAX_METADATA_BYTES", 16 * 1024**2)
# Longer metadata strings are stored cut to this length, and the metadata says it was cut.
VERIFY_MAX_METADATA_VALUE_CHARS = env_positive_int("VERIFY_MAX_METADATA_VALUE_CHARS", 4096)
# What ffmpeg reads before it decides what a file holds.
VERIFY_FFMPEG_PROBESIZE_BYTES = env_positive_int("VERIFY_FFMPEG_PROBESIZE_BYTES", 5_000_000)
VERIFY_FFMPEG_ANALYZEDURATION_S = env_positive_float("VERIFY_FFMPEG_ANALYZEDURATION_S", 5.0)
# Kernel limits on every ffmpeg/ffprobe process: CPU seconds (all threads), address space, and
# the size of any one file it writes.
VERIFY_FFMPEG_CPU_TIME_S = env_positive_int("VERIFY_FFMPEG_CPU_TIME_S", 3600)
VERIFY_FFMPEG_ADDRESS_SPACE_BYTES = env_positive_int("VERIFY_FFMPEG_ADDRESS_SPACE_BYTES", 8 * 1024**3)
VERIFY_FFMPEG_OUTPUT_FILE_BYTES = env_positive_int("VERIFY_FFMPEG_OUTPUT_FILE_BYTES", 1024**3)
# Photos: exiftool reads each file within this time; the Content Credentials (C2PA) reader runs
# in a child process under the ffmpeg limits within its own. Trust anchors for C2PA signers come
# from a PEM bundle on disk (offline); without one a good signature reads "signer not on a trust list".
VERIFY_EXIFTOOL_TIMEOUT_S = env_positive_float("VERIFY_EXIFTOOL_TIMEOUT_S", 30.0)
VERIFY_C2PA_TIMEOUT_S = env_positive_float("VERIFY_C2PA_TIMEOUT_S", 30.0)
VERIFY_C2PA_TRUST_ANCHORS = env.str("VERIFY_C2PA_TRUST_ANCHORS", default="")
if VERIFY_C2PA_TRUST_ANCHORS and not Path(VERIFY_C2PA_TRUST_ANCHORS).is_file():
    raise ImproperlyConfigured(f"VERIFY_C2PA_TRUST_ANCHORS names no file: {VERIFY_C2PA_TRUST_ANCHORS}")
# Uploads: one file part per request; content is sniffed before anything is stored.
VERIFY_MAX_UPLOAD_FILE_PARTS = env_positive_int("VERIFY_MAX_UPLOAD_FILE_PARTS", 1)
DATA_UPLOAD_MAX_NUMBER_FILES = VERIFY_MAX_UPLOAD_FILE_PARTS + 1  # Django's own cap, never the one that trips
VERIFY_IDEMPOTENCY_TTL_S = env_positive_int("VERIFY_IDEMPOTENCY_TTL_S", 24 * 3600)
# A running job holds a lease that a thread of its worker process renews every
# VERIFY_JOB_HEARTBEAT_S, whatever ffmpeg is doing. A job whose lease ran out (its worker or its
# host stopped) is taken back by the reconciler, which every worker runs on its own timer; a job
# whose worker process is provably dead (same host, pid gone) is taken back at once.
# docs/recovery.md has the design and the measurements. Queued jobs whose message was sent
# longer ago than VERIFY_JOB_RESEND_AFTER_S are sent again.
VERIFY_JOB_LEASE_S = env_positive_float("VERIFY_JOB_LEASE_S", 15.0)
VERIFY_JOB_HEARTBEAT_S = env_positive_float("VERIFY_JOB_HEARTBEAT_S", 3.0)
if VERIFY_JOB_HEARTBEAT_S * 3 > VERIFY_JOB_LEASE_S:
    raise ImproperlyConfigured(
        "VERIFY_JOB_LEASE_S must be at least three VERIFY_JOB_HEARTBEAT_S, so that a late heartbeat or two "
        f"does not hand a healthy job to another worker (got {VERIFY_JOB_LEASE_S} and {VERIFY_JOB_HEARTBEAT_S})"
    )
VERIFY_JOB_RESEND_AFTER_S = env_positive_float("VERIFY_JOB_RESEND_AFTER_S", 900.0)
VERIFY_RECONCILE_INTERVAL_S = env_positive_float("VERIFY_RECONCILE_INTERVAL_S", 5.0)
# A worker told to stop (SIGTERM) lets its running analyses finish for this long, then hands
# them back to the other workers; 0 hands them back at once. The stop timeout of the service
# manager (compose stop_grace_period, systemd TimeoutStopSec) must be longer.
VERIFY_WORKER_STOP_GRACE_S = env.float("VERIFY_WORKER_STOP_GRACE_S", default=10.0)
if VERIFY_WORKER_STOP_GRACE_S < 0:
    raise ImproperlyConfigured(f"VERIFY_WORKER_STOP_GRACE_S must be 0 or more, got {VERIFY_WORKER_STOP_GRACE_S}")
# How long the worker waits for a result from a pool process that died before it calls the task
# lost; job state lives in the database, so there is nothing to wait for.
CELERY_WORKER_LOST_WAIT = 1.0
VERIFY_INTEGRITY_CHECK_INTERVAL_S = env_positive_float("VERIFY_INTEGRITY_CHECK_INTERVAL_S", 24 * 3600.0)
# No task may outlive the broker's visibility timeout, or Redis would hand it to a second worker.
CELERY_TASK_TIME_LIMIT = round(VERIFY_FFPROBE_TIMEOUT_S + VERIFY_FFMPEG_TIMEOUT_S + 600)
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", CELERY_TASK_TIME_LIMIT + 1) <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT_S must exceed the longest task ({CELERY_TASK_TIME_LIMIT} s: "
        "VERIFY_FFPROBE_TIMEOUT_S + VERIFY_FFMPEG_TIMEOUT_S + 600)"
    )
# A broker that is down must not hold an upload's answer: publishing gives up within about a
# second (the job stays queued in the database and the reconciler sends it later).
CELERY_BROKER_CONNECTION_TIMEOUT = env_positive_float("CELERY_BROKER_CONNECTION_TIMEOUT_S", 2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}
if not CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = CELERY_BROKER_CONNECTION_TIMEOUT
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = [
    "verify.api.renderers.HTMLSafeJSONRenderer",  # file metadata is attacker-chosen text
    "rest_framework.renderers.BrowsableAPIRenderer",
]

# --- recycled footage ---
# Two keyframes show the same picture when their 256-bit PDQ hashes differ in at most this many
# bits; frames under the quality floor (flat, dark, blank) are neither indexed nor looked up.
# Two media items match when at least VERIFY_MATCH_MIN_FRAMES different pictures match at one
# time offset, within VERIFY_MATCH_TIME_TOLERANCE_S. The README has the measurements.
VERIFY_PDQ_MAX_DISTANCE = env_positive_int("VERIFY_PDQ_MAX_DISTANCE", 64)
VERIFY_PDQ_MIN_QUALITY = env.int("VERIFY_PDQ_MIN_QUALITY", default=50)
VERIFY_MATCH_MIN_FRAMES = env_positive_int("VERIFY_MATCH_MIN_FRAMES", 3)
VERIFY_MATCH_TIME_TOLERANCE_S = env_positive_float("VERIFY_MATCH_TIME_TOLERANCE_S", 0.25)
VERIFY_MATCH_MIRRORED = env.bool("VERIFY_MATCH_MIRRORED", default=True)
# Threads per index lookup; one per worker process keeps analyses from competing for cores.
VERIFY_SIMILARITY_THREADS = env_positive_int("VERIFY_SIMILARITY_THREADS", 1)
# Frames hashed per second for recycled footage (in the keyframe pass), and the PDQ distance at
# which a still matches a still or a frame: PDQ's published single-photo threshold.
VERIFY_DENSE_RATE_HZ = env_positive_float("VERIFY_DENSE_RATE_HZ", 2.0)
VERIFY_PHOTO_MAX_DISTANCE = env_positive_int("VERIFY_PHOTO_MAX_DISTANCE", 31)

# --- trusted timestamps (RFC 3161) ---
# Each stored original's SHA-256, and each evidence package's manifest, is timestamped by every
# TSA listed here (comma-separated http(s) URLs; none: no timestamps). A TSA that does not answer
# leaves the timestamp pending; it is asked again after VERIFY_TSA_RETRY_S, doubling up to an hour.
VERIFY_TSA_URLS = env.list("VERIFY_TSA_URLS", default=[])
for _tsa_url in VERIFY_TSA_URLS:
    if not _tsa_url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"VERIFY_TSA_URLS: {_tsa_url!r} is not an http(s) URL")
# PEM file of the TSAs' root (and intermediate) certificates: answers are checked against it when
# they arrive, and it goes into every evidence package. Unset: answers are checked for what they
# timestamp, and their signature is left to whoever verifies the package with the TSA's root.
VERIFY_TSA_CA_FILE = env.str("VERIFY_TSA_CA_FILE", default="")
VERIFY_TSA_TIMEOUT_S = env_positive_float("VERIFY_TSA_TIMEOUT_S", 10.0)
VERIFY_TSA_RETRY_S = env_positive_float("VERIFY_TSA_RETRY_S", 60.0)

# --- fetching links (verify.fetching) ---
# Every outbound connection of a fetch goes through the egress guard, which refuses loopback,
# private, link-local, CGNAT, multicast, reserved and unspecified addresses. These host:port
# pairs (IP addresses; IPv6 in brackets) are let through all the same: for a test server only.
VERIFY_FETCH_ALLOWED_ADDRESSES = env.list("VERIFY_FETCH_ALLOWED_ADDRESSES", default=[])
for _allowed in VERIFY_FETCH_ALLOWED_ADDRESSES:
    try:
        allowed_address_parse(_allowed)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"VERIFY_FETCH_ALLOWED_ADDRESSES: {_exc}") from None
VERIFY_FETCH_MAX_BYTES = env_positive_int("VERIFY_FETCH_MAX_BYTES", VERIFY_MAX_UPLOAD_BYTES)
VERIFY_FETCH_MAX_DURATION_S = env_positive_float("VERIFY_FETCH_MAX_DURATION_S", VERIFY_MAX_DURATION_S)
VERIFY_FETCH_TIMEOUT_S = env_positive_float("VERIFY_FETCH_TIMEOUT_S", 1800.0)  # a whole fetch
VERIFY_FETCH_STALL_TIMEOUT_S = env_positive_float("VERIFY_FETCH_STALL_TIMEOUT_S", 30.0)  # no byte for this long
VERIFY_FETCH_MAX_REDIRECTS = env_positive_int("VERIFY_FETCH_MAX_REDIRECTS", 10)
VERIFY_FETCH_MAX_PAGE_BYTES = env_positive_int("VERIFY_FETCH_MAX_PAGE_BYTES", 5 * 1024**2)  # the post page kept
VERIFY_FETCH_MAX_INFO_BYTES = env_positive_int("VERIFY_FETCH_MAX_INFO_BYTES", 1024**2)  # yt-dlp's info JSON kept
# Telegram beyond public posts (Telethon): both or neither.
VERIFY_TELEGRAM_API_ID = env.str("VERIFY_TELEGRAM_API_ID", default="")
VERIFY_TELEGRAM_API_HASH = env.str("VERIFY_TELEGRAM_API_HASH", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # faiss reports at INFO which CPU build it loaded (and a fallback as an exception text).
    # django-axes announces its configuration at INFO in every process; its lockouts are warnings.
    "loggers": {"faiss.loader": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
