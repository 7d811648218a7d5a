"""Refusals the domain raises: a code, a human message, the kind of refusal, and extra data.

The domain says what kind of refusal it is; the API layer (``verify.api.errors``) decides which
HTTP status that is, and the desk shows the message.
"""

from enum import StrEnum
from typing import Any


class Refused(StrEnum):
    """Why an operation was refused."""

    CONFLICT = "conflict"  # the thing's current state does not allow it (now)
    NOT_PERMITTED = "not_permitted"  # this person may not do it
    INVALID = "invalid"  # what was asked for is incomplete or wrong


class DomainError(Exception):
    """A refused operation from a service: code, human message, kind, extra fields."""

    def __init__(self, code: str, message: str, *, kind: Refused = Refused.CONFLICT, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.extra = extra
