"""Turn an error response back into the domain error class it came from.

The server maps `ModelyardError` subclasses to status codes in one place; this is
that mapping read backwards, so client code can `except NotFound` just as the
services layer does.
"""

from __future__ import annotations

from typing import Any

import httpx

from modelyard.domain import errors


class ModelyardHTTPError(errors.ModelyardError):
    """An error answer the client could not map to a more specific class."""

    def __init__(self, message: str, *, status_code: int, code: str, request_id: str | None):
        super().__init__(message, code=code)
        self.status_code = status_code
        self.request_id = request_id


_BY_STATUS: dict[int, type[errors.ModelyardError]] = {
    400: errors.Invalid,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
}


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # ARM-shaped error bodies
    message = body.get("message") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    message = message or f"HTTP {response.status_code} from {response.request.url}"
    cls = _BY_STATUS.get(response.status_code)
    if cls is not None:
        raise cls(message, code=code or cls.code)
    raise ModelyardHTTPError(
        message,
        status_code=response.status_code,
        code=code or "HttpError",
        request_id=response.headers.get("x-ms-request-id"),
    )
