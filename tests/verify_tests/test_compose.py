"""The Compose file: valid against the Compose Specification, and deployed the way the docs say.

There is no Docker engine in CI, so the file is checked against the specification's JSON schema
(what `docker compose config` validates against) and then read for the properties that matter.
"""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The Compose Specification's schema/compose-spec.json, as vendored in the check-jsonschema 0.39.0
# wheel on PyPI (check_jsonschema/builtin_schemas/vendor/compose-spec.json, sha256 d549057e...);
# Apache-2.0, licence beside it. Refresh it from a newer check-jsonschema release.
COMPOSE_SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
# Compose interpolates `$NAME` and `${...}` everywhere; `$$` is a literal dollar sign.
UNESCAPED_DOLLAR = re.compile(r"(?<!\$)\$(?!\$)")
NGINX_DIRECTIVE = re.compile(r"^\s*(\w+)\s+([^;{]+);", re.MULTILINE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def nginx_directives(compose: dict[str, Any]) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for name, value in NGINX_DIRECTIVE.findall(compose["configs"]["nginx-verify"]["content"]):
        directives.setdefault(name, []).append(value.strip())
    return directives


def nginx_size_bytes(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def nginx_seconds(value: str) -> int:
    return int(value.removesuffix("s"))


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)

    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda error: list(error.absolute_path))

    assert [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors] == []


def test_compose_publishes_a_port_on_the_proxy_only(compose: dict[str, Any]) -> None:
    services = compose["services"]

    published = {name for name, service in services.items() if service.get("ports")}

    assert published == {"proxy"}
    assert services["proxy"]["ports"] == ["8000:8000"]
    assert services["proxy"]["image"].startswith("nginx:")
    assert services["web"]["expose"] == ["8000"]
    assert "server web:8000;" in compose["configs"]["nginx-verify"]["content"]


def test_compose_secret_key_has_no_default(compose: dict[str, Any]) -> None:
    secret_key = compose["x-verify-env"]["DJANGO_SECRET_KEY"]

    assert secret_key.startswith("${DJANGO_SECRET_KEY:?")
    assert ":-" not in secret_key
    for name, service in compose["services"].items():
        assert service.get("environment", {}).get("DJANGO_SECRET_KEY", secret_key) == secret_key, name


def test_compose_worker_consumes_every_queue(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]["command"]

    assert worker[:4] == ["celery", "-A", "verify", "worker"]
    assert not any(arg.startswith(("-Q", "--queues")) for arg in worker)


def test_compose_needs_no_beat_because_every_worker_reconciles(compose: dict[str, Any]) -> None:
    assert not any("beat" in service.get("command", []) for service in compose["services"].values())


def test_compose_web_runs_threaded_gunicorn(compose: dict[str, Any]) -> None:
    command = compose["services"]["web"]["command"]

    assert command[0] == "gunicorn"
    assert command[command.index("--worker-class") + 1] == "gthread"


def test_compose_nginx_config_survives_interpolation(compose: dict[str, Any]) -> None:
    content = compose["configs"]["nginx-verify"]["content"]

    assert UNESCAPED_DOLLAR.findall(content) == []


def test_compose_nginx_buffers_requests_within_the_upload_limit(compose: dict[str, Any]) -> None:
    directives = nginx_directives(compose)
    upload_limit_bytes = int(compose["x-verify-env"].get("VERIFY_MAX_UPLOAD_BYTES", settings.VERIFY_MAX_UPLOAD_BYTES))

    body_limit_bytes = nginx_size_bytes(directives["client_max_body_size"][0])

    # The service's own 413 (with the API's error body) answers before nginx's does.
    assert upload_limit_bytes <= body_limit_bytes <= upload_limit_bytes + 64 * 1024**2
    assert directives["proxy_request_buffering"] == ["on"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert 0 < nginx_seconds(directives[timeout][0]) <= 60, timeout
    assert nginx_seconds(directives["proxy_read_timeout"][0]) >= 600
    forwarded = {value.split()[0] for value in directives["proxy_set_header"]}
    assert {"Host", "X-Forwarded-For", "X-Forwarded-Proto"} <= forwarded
