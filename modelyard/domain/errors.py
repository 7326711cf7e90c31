"""Typed errors raised by every layer below the API.

Each API family maps these to its own error body in one place, by class, so a new
error only needs a class here and (maybe) a line in that mapping.

    ModelyardError                  base; never raised itself
    ├── NotFound                    a resource (or account) does not exist
    ├── Conflict                    the request clashes with current state
    ├── Invalid                     the request is malformed or breaks a rule
    │   ├── UnsafeArchive           an archive would escape its folder or is a bomb
    │   ├── ForbiddenUrl            a URL's scheme, host or path is not allowed
    │   └── FetchFailed             a URL could not be fetched (404, refused, timeout)
    ├── PayloadTooLarge             a body or artifact exceeds a configured cap
    ├── BuildFailed                 an image build step failed (resolver, installer, engine)
    │   └── UpstreamUnavailable     a service the build needs (the package index) is unreachable
    ├── DeploymentFailed            a service's replicas did not become ready
    ├── OperationCancelled          async work stopped because a user cancelled it
    ├── Unauthenticated             no valid bearer token
    └── PermissionDenied            a valid token without rights on the target
"""

from __future__ import annotations

__all__ = [
    "BuildFailed",
    "Conflict",
    "DeploymentFailed",
    "FetchFailed",
    "ForbiddenUrl",
    "Invalid",
    "ModelyardError",
    "NotFound",
    "OperationCancelled",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unauthenticated",
    "UnsafeArchive",
    "UpstreamUnavailable",
]


class ModelyardError(Exception):
    """Base class: carries a stable machine-readable `code` and a user-facing message."""

    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        self.target = target
        if code is not None:
            self.code = code


class NotFound(ModelyardError):
    """Raised when the named resource, or the account holding it, does not exist."""

    code = "NotFound"


class Conflict(ModelyardError):
    """Raised when the request clashes with current state (name taken, still in use)."""

    code = "Conflict"


class Invalid(ModelyardError):
    """Raised when input is malformed or breaks a validation rule; `target` names the field."""

    code = "BadRequest"


class UnsafeArchive(Invalid):
    """Raised when an archive has absolute paths, `..`, escaping links, or exceeds a cap."""

    code = "UnsafeArchive"


class ForbiddenUrl(Invalid):
    """Raised when a URL's scheme, host or file path is outside what the server allows."""

    code = "ForbiddenUrl"


class FetchFailed(Invalid):
    """Raised when an allowed URL cannot be fetched: an HTTP error status, refused, timeout."""

    code = "FetchFailed"


class PayloadTooLarge(ModelyardError):
    """Raised when an uploaded or fetched artifact exceeds the configured size cap."""

    code = "PayloadTooLarge"


class BuildFailed(ModelyardError):
    """Raised when a build step fails; the message says which step and why (resolver output)."""

    code = "BuildFailed"


class DeploymentFailed(ModelyardError):
    """Raised when new replicas crash or are not ready in time; the old version keeps serving."""

    code = "DeploymentFailed"


class UpstreamUnavailable(BuildFailed):
    """Raised when the package index or another upstream cannot be reached; retry later."""

    code = "UpstreamUnavailable"


class OperationCancelled(ModelyardError):
    """Raised inside async work when its operation was cancelled; the work cleans up and stops."""

    code = "OperationCancelled"


class Unauthenticated(ModelyardError):
    """Raised when a request carries no bearer token, or one that is unknown or revoked."""

    code = "Unauthorized"


class PermissionDenied(ModelyardError):
    """Raised when a valid token lacks the role or account scope the request needs."""

    code = "Forbidden"
