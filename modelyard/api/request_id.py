"""Pure ASGI middleware: `x-ms-request-id` on every response, client id echoed.

`x-ms-client-request-id` is echoed when the client sent one and otherwise set to our
request id: the 2017 Azure CLI reads that header to explain a failed operation and
gives up with a bare "Error occurred" when it is missing.

Written as raw ASGI rather than BaseHTTPMiddleware so it adds no task or stream
wrapping to every request: it only appends headers at `http.response.start`.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLIENT_ID = b"x-ms-client-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        client_id = next((v for k, v in scope["headers"] if k == _CLIENT_ID), None)

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-ms-request-id", request_id.encode()))
                headers.append((_CLIENT_ID, client_id[:200] if client_id else request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_ids)
