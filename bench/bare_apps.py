"""The bare ASGI apps `bench/scoring.py` compares modelyard's replicas with.

Each does a service's work and nothing else (no routing, auth, admission control,
metrics or request ids), served by uvicorn exactly as a replica is served
(`modelyard/runtime/server.py`: the same `uvicorn.Config` settings, so uvloop and
httptools where installed, on a socket listening with the same backlog):

- `echo`: parse the JSON body and answer it JSON-encoded (what the echo driver's
  `run(raw)` returning `json.loads(raw)` costs, plus the runtime's encoding);
- `sklearn`: parse `{"data": rows}`, `model.predict(numpy.asarray(rows))` in-process,
  answer the predictions as a JSON list; no batching.

`GET /` answers `Healthy`, for the readiness check. Run as a script, with the image
environment's interpreter so both sides use the same packages:

    python bench/bare_apps.py echo|sklearn --port P [--model model.pkl] [--cpus 0,1]

This file imports only the standard library and uvicorn at the top (numpy and joblib
for `sklearn`), so it runs in an image's environment, which holds no `bench` package.
`--cpus` pins the process before numpy is imported, as the supervisor pins a replica
right after starting it, so OpenBLAS sizes its thread pool for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Work = Callable[[bytes], bytes]

BACKLOG = 2048  # modelyard.runtime.server.BACKLOG
JSON = b"application/json"
HEALTHY = b"Healthy"


class BareApp:
    """POST (any path): `work(body)`, JSON; GET /: `Healthy`. Nothing else."""

    def __init__(self, work: Work) -> None:
        self.work = work

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["method"] == "GET":
            await _respond(send, 200, HEALTHY, b"text/plain; charset=utf-8")
            return
        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            while message.get("more_body", False):
                message = await receive()
                chunks.append(message.get("body", b""))
            body = b"".join(chunks)
        await _respond(send, 200, self.work(body), JSON)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def echo_work() -> Work:
    def work(body: bytes) -> bytes:
        return json.dumps(json.loads(body)).encode()

    return work


def sklearn_work(model_path: str) -> Work:
    import joblib
    import numpy

    model = joblib.load(model_path)

    def work(body: bytes) -> bytes:
        rows = json.loads(body)["data"]
        return json.dumps(model.predict(numpy.asarray(rows)).tolist()).encode()

    return work


def serve(app: BareApp, port: int) -> None:
    """As `modelyard.runtime.server.serve` runs uvicorn, minus the drain and admin socket."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(BACKLOG)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A bare ASGI app for bench/scoring.py.")
    parser.add_argument("app", choices=("echo", "sklearn"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", help="the joblib model file (sklearn)")
    parser.add_argument("--cpus", help="pin to these cores first, comma separated")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    if args.app == "sklearn":
        if not args.model:
            parser.error("sklearn needs --model")
        work = sklearn_work(args.model)
    else:
        work = echo_work()
    serve(BareApp(work), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
