"""The secret-key policy and the deploy checks that enforce it.

settings.py uses the policy to refuse to start a deployment on a weak key; ``manage.py check
--deploy`` reports the same problems as errors. A key the service generated for itself (stored
under ``var/``) is fine on this machine's loopback and never for a deployment.
"""

from typing import Any

from django.conf import settings
from django.core import checks

SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
NEW_KEY_HINT = (
    "Set DJANGO_SECRET_KEY to a long random value, for example the output of: "
    'python3 -c "import secrets; print(secrets.token_urlsafe(50))"'
)
# Hosts that only this machine can reach (and Django's test client).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "testserver"})


def secret_key_weakness(key: str) -> str | None:
    """Return why ``key`` is too weak to sign a deployment's sessions, or None if it is not."""
    if key.startswith("django-insecure-"):
        return "DJANGO_SECRET_KEY is Django's insecure placeholder"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"DJANGO_SECRET_KEY has {len(key)} characters; it needs at least {SECRET_KEY_MIN_LENGTH}"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"DJANGO_SECRET_KEY needs at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
    return None


def is_loopback_host(host: str) -> bool:
    """Return True if ``host`` (a name or address, without a port) is reachable only from here."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key_set_for_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse a generated or weak secret key in a deployment."""
    if getattr(settings, "VERIFY_SECRET_KEY_GENERATED", False):
        return [
            checks.Error(
                "DJANGO_SECRET_KEY is not set: the key was generated for this machine's loopback service.",
                hint=NEW_KEY_HINT,
                id="verify.E001",
            )
        ]
    weakness = secret_key_weakness(settings.SECRET_KEY)
    if weakness:
        return [checks.Error(f"{weakness}.", hint=NEW_KEY_HINT, id="verify.E002")]
    return []
