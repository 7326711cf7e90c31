"""The modelyard Python client. Everything public is re-exported here."""

from modelyard.client._client import (
    API_VERSION,
    DEFAULT_URL,
    AccountPath,
    Client,
    find_local_token,
)
from modelyard.client._errors import ModelyardHTTPError
from modelyard.domain.errors import (
    Conflict,
    Invalid,
    ModelyardError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_URL",
    "AccountPath",
    "Client",
    "Conflict",
    "Invalid",
    "ModelyardError",
    "ModelyardHTTPError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unauthenticated",
    "find_local_token",
]
