"""The replica's HTTP surface, a bare ASGI app.

    GET|HEAD /        200 `Healthy` (serving starts only after the driver's init())
    POST /score       the driver's run(raw_body), JSON-encoded; needs the key if keys are set
                      (500 `{"error"}` when run raises; 400 when it raises domain Invalid,
                      as the built-in drivers do for a body they cannot read)
    GET /swagger.json OpenAPI 2.0 for the service
    GET /metrics      Prometheus text
    anything else     404 (405 for a known path with the wrong method), `{"error": ...}`

Every response carries `x-ms-request-id` (the client's `x-ms-client-request-id` when
it sent one). Bare ASGI rather than a framework keeps the scoring path within a few
percent of the server's own ceiling: headers are prebuilt, the body is read without
copies when it arrives in one piece, and optional features cost one `is None` test
when they are off.

`run` is called inline on the event loop: scoring is CPU-bound, and a thread hand-off
per request costs more than it frees. So admission control cannot count requests
inside the app (there is only ever one); it counts what waits for the loop
(`bind_server`): the request tasks uvicorn holds (requests parsed, not answered) plus
the connections waiting in the kernel to be accepted. The second matters because
uvloop (libuv) accepts one connection per loop iteration: clients that open a new
connection per request queue in the listen backlog, where uvicorn's tasks never
show them. Beyond the limit a request is answered 429 at once, so the queue stays
short rather than growing to the listen backlog.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Sized
from time import perf_counter
from typing import Any
from uuid import uuid4

from modelyard.domain.errors import Invalid
from modelyard.runtime.auth import KeyFileWatcher, KeyRing
from modelyard.runtime.batching import BatchQueue, QueueFull, QueueStopped
from modelyard.runtime.collection import DataCollector
from modelyard.runtime.driver import Driver
from modelyard.runtime.insights import RequestLog
from modelyard.runtime.metrics import CONTENT_TYPE, RuntimeMetrics
from modelyard.runtime.responses import (
    ALLOW_GET,
    ALLOW_POST,
    BUSY,
    ENCODER,
    JSON,
    NOT_ALLOWED,
    NOT_FOUND,
    NOT_UTF8,
    RETRY_AFTER,
    STOPPING,
    TEXT,
    UNAUTHORIZED,
    WWW_AUTHENTICATE,
    Header,
    Receive,
    Scope,
    Send,
    error_body,
    read_body,
    respond,
)

__all__ = ["ScoringApp"]

_log = logging.getLogger("modelyard.runtime")
_CLIENT_REQUEST_ID = re.compile(rb"[\x20-\x7e]{1,200}")  # echoed only when printable
_BACKLOG_SAMPLE_S = 0.001  # read the accept queue at most once a millisecond


def _no_backlog() -> int:
    return 0


class ScoringApp:
    """Serves one driver; the optional parts are None when their feature is off."""

    def __init__(
        self,
        driver: Driver,
        *,
        swagger: bytes = b"{}",
        max_concurrent: int = 32,
        keys: KeyRing | None = None,
        key_watcher: KeyFileWatcher | None = None,
        collector: DataCollector | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.driver = driver
        self.metrics = RuntimeMetrics(
            self.in_flight, lambda: self.backlog(), batching=driver.run_batch is not None
        )
        self.swagger = swagger
        self.max_concurrent = max_concurrent
        self.keys = keys
        self.key_watcher = key_watcher
        self.batcher: BatchQueue[str, Any] | None = None
        self.collector = collector
        self.request_log = request_log
        self.tasks: Sized = ()
        """uvicorn's request tasks (see `bind_server`); empty when run in-process."""
        self.backlog: Callable[[], int] = _no_backlog
        """Connections waiting to be accepted on the TCP socket (see `bind_server`)."""
        self._backlog_seen = 0
        self._backlog_read_at = float("-inf")
        self.draining = False
        """Set on SIGTERM: every response then closes its connection."""
        # Request ids are UUID-4 shaped: a random prefix per replica and a counter, 0.2 µs
        # instead of uuid4()'s 2.5 µs, and as unique (the prefix keeps 74 random bits).
        self._request_id_prefix = str(uuid4())[:24].encode()
        self._request_numbers = itertools.count(1)

    def enable_batching(self, max_size: int, max_wait_s: float) -> None:
        """Answer /score through an adaptive batch queue over the driver's run_batch."""
        if self.driver.run_batch is None:
            raise ValueError(f"driver {self.driver.name} has no run_batch")
        self.batcher = BatchQueue(
            self.driver.run_batch,
            max_size=max_size,
            max_wait_s=max_wait_s,
            capacity=self.max_concurrent,
            pending=self.pending_for_batch,
            on_batch=self.metrics.observe_batch,
        )

    def bind_server(self, tasks: Sized, backlog: Callable[[], int] = _no_backlog) -> None:
        """Count `tasks` (uvicorn's `server_state.tasks`) and `backlog` for admission."""
        self.tasks = tasks
        self.backlog = backlog

    def waiting(self, now: float) -> int:
        """Requests waiting for the loop: uvicorn's tasks plus the (sampled) accept queue."""
        if now - self._backlog_read_at > _BACKLOG_SAMPLE_S:
            self._backlog_read_at = now
            self._backlog_seen = self.backlog()
        return len(self.tasks) + self._backlog_seen

    def in_flight(self) -> int:
        return len(self.tasks)

    def pending_for_batch(self) -> int:
        """Requests uvicorn holds that have not reached the batch queue yet."""
        outstanding = self.batcher.outstanding if self.batcher is not None else 0
        return len(self.tasks) - outstanding

    async def start(self) -> None:
        """Start the background work: key polling, batching, periodic flushes."""
        for part in (self.key_watcher, self.batcher, self.collector, self.request_log):
            if part is not None:
                part.start()

    async def stop(self) -> None:
        """Stop it all, answering queued items and writing buffered records."""
        for part in (self.batcher, self.key_watcher, self.collector, self.request_log):
            if part is not None:
                await part.stop()

    def flush(self) -> None:
        """Write buffered records now, for the end of the process if `stop` never ran."""
        for sink in (self.collector, self.request_log):
            if sink is not None:
                sink.flush()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        started = perf_counter()
        request_id: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-ms-client-request-id" and _CLIENT_REQUEST_ID.fullmatch(value):
                request_id = value
        if request_id is None:
            request_id = b"%s%012x" % (self._request_id_prefix, next(self._request_numbers))
        path: str = scope["path"]
        method: str = scope["method"]
        route = path
        if path == "/score":
            if method == "POST":
                status = await self._score(receive, send, request_id, authorization, started)
            else:
                status = await self._send(send, 405, NOT_ALLOWED, request_id, ALLOW_POST)
        elif path in ("/", "/swagger.json", "/metrics"):
            if method not in ("GET", "HEAD"):
                status = await self._send(send, 405, NOT_ALLOWED, request_id, ALLOW_GET)
            elif path == "/":
                status = await self._send(send, 200, b"Healthy", request_id, content_type=TEXT)
            elif path == "/swagger.json":
                status = await self._send(send, 200, self.swagger, request_id)
            else:
                body = self.metrics.render()
                status = await self._send(send, 200, body, request_id, content_type=CONTENT_TYPE)
        else:
            route = "other"
            status = await self._send(send, 404, NOT_FOUND, request_id)
        elapsed = perf_counter() - started
        self.metrics.observe(route, status, elapsed)
        if self.request_log is not None:
            self.request_log.record(request_id.decode("latin-1"), path, status, elapsed)

    async def _score(
        self,
        receive: Receive,
        send: Send,
        request_id: bytes,
        authorization: bytes | None,
        started: float,
    ) -> int:
        if self.waiting(started) > self.max_concurrent:
            return await self._send(send, 429, BUSY, request_id, RETRY_AFTER)
        if self.keys is not None and not self.keys.allows(authorization):
            return await self._send(send, 401, UNAUTHORIZED, request_id, WWW_AUTHENTICATE)
        body = await read_body(receive)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await self._send(send, 400, NOT_UTF8, request_id)
        status, payload = await self._run(text)
        if status == 429:
            return await self._send(send, 429, payload, request_id, RETRY_AFTER)
        await self._send(send, status, payload, request_id)
        if self.collector is not None:
            elapsed = perf_counter() - started
            self.collector.record(request_id.decode("latin-1"), text, payload, status, elapsed)
        return status

    async def _run(self, text: str) -> tuple[int, bytes]:
        """The driver's answer to one body, as (status, JSON body)."""
        try:
            if self.batcher is None:
                result = self.driver.run(text)
            else:
                result = await self.batcher.submit(text)
        except QueueFull:
            return 429, BUSY
        except QueueStopped:
            return 503, STOPPING
        except Invalid as exc:  # the driver says the input is wrong: the caller's mistake
            return 400, error_body(exc)
        except Exception as exc:
            if self.batcher is None:  # the batch queue logs its own failures
                _log.exception("run() failed")
            return 500, error_body(exc)
        try:
            return 200, ENCODER.encode(result).encode()
        except (TypeError, ValueError) as exc:
            _log.error("run() returned a result that is not JSON-serialisable: %s", exc)
            return 500, error_body(exc)

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        request_id: bytes,
        extra: Header | None = None,
        content_type: bytes = JSON,
    ) -> int:
        return await respond(send, status, body, request_id, extra, content_type, self.draining)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    _log.exception("replica start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
