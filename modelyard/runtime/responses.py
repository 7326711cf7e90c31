"""The bytes of the replica's responses: headers and bodies prebuilt once, and helpers.

Kept apart from the app so the app reads as routing and policy; everything here is
on the hot path, so constant headers and bodies are module-level bytes and a
response is two `send` calls with a header list built from them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "ALLOW_GET",
    "ALLOW_POST",
    "BUSY",
    "CLOSE",
    "ENCODER",
    "JSON",
    "NOT_ALLOWED",
    "NOT_FOUND",
    "NOT_UTF8",
    "RETRY_AFTER",
    "STOPPING",
    "TEXT",
    "UNAUTHORIZED",
    "WWW_AUTHENTICATE",
    "Header",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "error_body",
    "read_body",
    "respond",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
CLOSE: Header = (b"connection", b"close")
RETRY_AFTER: Header = (b"retry-after", b"1")
WWW_AUTHENTICATE: Header = (b"www-authenticate", b"Bearer")
ALLOW_POST: Header = (b"allow", b"POST")
ALLOW_GET: Header = (b"allow", b"GET, HEAD")
BUSY = b'{"error": "too many requests in flight; retry shortly"}'
UNAUTHORIZED = b'{"error": "a valid service key is required: Authorization: Bearer <key>"}'
NOT_UTF8 = b'{"error": "the request body is not valid UTF-8"}'
STOPPING = b'{"error": "the replica is shutting down; retry"}'
NOT_FOUND = b'{"error": "not found"}'
NOT_ALLOWED = b'{"error": "method not allowed"}'


def _jsonable(value: Any) -> Any:
    """Last resort for results json cannot encode: numpy arrays and scalars."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"a {type(value).__name__} is not JSON-serialisable")


ENCODER = json.JSONEncoder(default=_jsonable)


async def read_body(receive: Receive) -> bytes:
    """The whole request body; without a copy when it came in one message (the usual case)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def error_body(exc: BaseException) -> bytes:
    """`{"error": <message>}`: the exception's message only, never a traceback."""
    message = str(exc) or type(exc).__name__
    return json.dumps({"error": message}).encode()


async def respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: bytes,
    extra: Header | None = None,
    content_type: bytes = JSON,
    close: bool = False,
) -> int:
    """Send a complete response; returns `status` for the caller's metrics."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-ms-request-id", request_id),
    ]
    if extra is not None:
        headers.append(extra)
    if close:
        headers.append(CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status
