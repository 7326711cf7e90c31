"""Domain errors to HTTP for the Model Management families, in one place, by class.

Body: `{"code", "message", "details": [{"code", "message"}], "statusCode"}` — the
2017 Azure CLI only explains a failure to its user when `statusCode` is present.
No stack trace ever reaches a response; unexpected errors are logged with the
request id and answered with a generic 500.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.domain import errors

_log = structlog.get_logger("modelyard.api")

_STATUS_BY_CLASS: tuple[tuple[type[errors.ModelyardError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Invalid, 400),
    (errors.PayloadTooLarge, 413),
    (errors.UpstreamUnavailable, 502),
    (errors.BuildFailed, 400),
    (errors.DeploymentFailed, 400),
    (errors.OperationCancelled, 409),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
)


class UnsupportedMediaType(errors.ModelyardError):
    """Raised by the API when a body is not sent as application/json."""

    code = "UnsupportedMediaType"


def status_for(exc: errors.ModelyardError) -> int:
    if isinstance(exc, UnsupportedMediaType):
        return 415
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(status: int, code: str, message: str, target: str | None = None) -> dict[str, Any]:
    detail_code = target or code
    return {
        "code": code,
        "message": message,
        "details": [{"code": detail_code, "message": message}],
        "statusCode": status,
    }


def error_response(status: int, code: str, message: str, target: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, code, message, target), status, headers=headers)


async def handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ModelyardError)
    status = status_for(exc)
    if status >= 500:
        _log.error("request failed", path=request.url.path, error=exc.message)
    return error_response(status, exc.code, exc.message, exc.target)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, "BadRequest", describe_validation(exc.errors()))


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "NotFound", 405: "MethodNotAllowed"}
    code = codes.get(exc.status_code, "HttpError")
    message = str(exc.detail) if exc.status_code != 404 else f"no route {request.url.path}"
    return error_response(exc.status_code, code, message)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    _log.exception("unexpected error", path=request.url.path, request_id=request_id)
    response = error_response(
        500, "InternalError", f"internal error; quote request id {request_id} to the operator"
    )
    # This handler runs outside the request-id middleware, so add the header here.
    response.headers["x-ms-request-id"] = request_id
    return response


def describe_validation(problems: Any) -> str:
    """pydantic's error list as one line naming each field, e.g. 'name: Field required'."""
    parts = []
    for problem in problems:
        loc = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
