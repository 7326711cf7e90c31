"""The replica's HTTP surface as a bare ASGI app: `GET /` health, `POST /score`.

Bare ASGI rather than a framework keeps the scoring path within a few percent of
the server's own ceiling; there is nothing here a framework would do for us.
"""

from __future__ import annotations

import json
from typing import Any

from modelyard.runtime.driver import Driver

Scope = dict[str, Any]
Message = dict[str, Any]


class ScoringApp:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            await _respond(send, 200, b"Healthy", b"text/plain")
        elif path == "/score" and method == "POST":
            body = await _read_body(receive)
            try:
                result = self.driver.run(body.decode("utf-8"))
                payload = json.dumps(result).encode()
            except Exception as exc:  # a driver error answers 500; the replica keeps serving
                await _respond(send, 500, json.dumps({"error": str(exc)}).encode())
                return
            await _respond(send, 200, payload)
        else:
            await _respond(send, 404, b'{"error": "not found"}')


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Any, status: int, body: bytes, content_type: bytes = b"application/json"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
