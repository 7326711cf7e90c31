"""The replica's HTTP surface, called in-process: routes, errors, keys, admission, batching."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any

import httpx

from modelyard.domain.errors import Invalid
from modelyard.runtime.app import ScoringApp
from modelyard.runtime.auth import KeyRing
from modelyard.runtime.driver import Driver
from modelyard.runtime.factory import create_app
from modelyard.runtime.settings import RuntimeSettings


class Echo:
    """A driver: answers with the parsed body; `boom` raises; `array` returns a tolist() value."""

    def run(self, raw_body: str) -> Any:
        document = json.loads(raw_body)
        if document == "boom":
            raise ValueError("the model exploded")
        if document == "invalid":
            raise Invalid("expected a list of rows")
        if document == "array":
            return SimpleNamespace(tolist=lambda: [1, 2])
        if document == "object":
            return object()
        return {"echo": document}


class BatchEcho(Echo):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def run_batch(self, raw_bodies: list[str]) -> Sequence[Any]:
        self.batches.append(len(raw_bodies))
        return [self.run(raw) for raw in raw_bodies]


def call(app: ScoringApp, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def run() -> None:
        await app.start()
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
                await scenario(client)
        finally:
            await app.stop()

    asyncio.run(run())


def test_health_answers_healthy_with_a_request_id() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.text == "Healthy"
        assert response.headers["content-type"].startswith("text/plain")
        assert uuid.UUID(response.headers["x-ms-request-id"]).version == 4

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_score_returns_the_json_of_runs_result_and_echoes_the_client_request_id() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/score", json={"x": [1, 2]}, headers={"x-ms-client-request-id": "abc-123"}
        )
        assert response.status_code == 200
        assert response.json() == {"echo": {"x": [1, 2]}}
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-ms-request-id"] == "abc-123"
        assert (await client.post("/score", json="array")).json() == [1, 2]

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_a_driver_exception_answers_500_with_its_message_and_the_next_request_works() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        failed = await client.post("/score", json="boom")
        assert failed.status_code == 500
        assert failed.json() == {"error": "the model exploded"}
        assert "Traceback" not in failed.text
        assert (await client.post("/score", json=1)).status_code == 200

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_a_driver_refusing_its_input_with_invalid_answers_400() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/score", json="invalid")
        assert response.status_code == 400
        assert response.json() == {"error": "expected a list of rows"}

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_an_overlong_client_request_id_is_not_echoed() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.get("/", headers={"x-ms-client-request-id": "x" * 201})
        assert response.headers["x-ms-request-id"] != "x" * 201

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_a_result_json_cannot_encode_answers_500() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/score", json="object")
        assert response.status_code == 500
        assert "not JSON-serialisable" in response.json()["error"]

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_a_body_that_is_not_utf8_answers_400() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/score", content=b"\xff\xfe")
        assert response.status_code == 400
        assert "UTF-8" in response.json()["error"]

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_unknown_paths_are_404_and_wrong_methods_405_in_json() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        missing = await client.get("/nope")
        assert missing.status_code == 404
        assert missing.json() == {"error": "not found"}
        wrong = await client.get("/score")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST"
        assert (await client.delete("/")).status_code == 405

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_with_keys_score_needs_a_valid_bearer_key_but_health_does_not() -> None:
    ring = KeyRing((hashlib.sha256(b"secret").digest(),))

    async def scenario(client: httpx.AsyncClient) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.post("/score", json=1, headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "error" in refused.json()
        ok = await client.post("/score", json=1, headers={"Authorization": "Bearer secret"})
        assert ok.status_code == 200
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200

    call(ScoringApp(Driver(Echo(), "echo"), keys=ring), scenario)


def test_requests_beyond_the_admission_limit_get_429_with_retry_after() -> None:
    app = ScoringApp(Driver(Echo(), "echo"), max_concurrent=2)

    async def scenario(client: httpx.AsyncClient) -> None:
        app.bind_server([object()] * 3)  # uvicorn holds three requests
        refused = await client.post("/score", json=1)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "error" in refused.json()
        assert (await client.get("/")).status_code == 200  # probes are never refused
        app.bind_server([object()] * 2)
        assert (await client.post("/score", json=1)).status_code == 200
        app.bind_server([object()], backlog=lambda: 2)  # and two connections not accepted yet
        await asyncio.sleep(0.002)  # the accept queue is read at most once a millisecond
        assert (await client.post("/score", json=1)).status_code == 429

    call(app, scenario)


def test_while_draining_every_response_closes_its_connection() -> None:
    app = ScoringApp(Driver(Echo(), "echo"))

    async def scenario(client: httpx.AsyncClient) -> None:
        assert "connection" not in (await client.get("/")).headers
        app.draining = True
        response = await client.post("/score", json=1)
        assert response.status_code == 200
        assert response.headers["connection"] == "close"

    call(app, scenario)


def test_metrics_count_requests_by_route_and_status() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        await client.post("/score", json=1)
        await client.post("/score", json="boom")
        await client.get("/nope")
        text = (await client.get("/metrics")).text
        assert 'modelyard_requests_total{route="/score",status="200"} 1.0' in text
        assert 'modelyard_requests_total{route="/score",status="500"} 1.0' in text
        assert 'modelyard_requests_total{route="other",status="404"} 1.0' in text
        assert 'modelyard_request_duration_seconds_count{route="/score"} 2.0' in text
        assert "modelyard_requests_in_flight" in text
        assert "modelyard_replica_start_time_seconds" in text
        assert "modelyard_batch_size" not in text

    call(ScoringApp(Driver(Echo(), "echo")), scenario)


def test_a_driver_with_run_batch_answers_concurrent_requests_in_batches() -> None:
    driver = BatchEcho()
    app = create_app(Driver(driver, "batch"), RuntimeSettings(batch_max_wait_ms=20))

    async def scenario(client: httpx.AsyncClient) -> None:
        responses = await asyncio.gather(*(client.post("/score", json=i) for i in range(10)))
        assert [r.json() for r in responses] == [{"echo": i} for i in range(10)]
        failed = await client.post("/score", json="boom")
        assert failed.status_code == 500
        assert failed.json() == {"error": "the model exploded"}
        text = (await client.get("/metrics")).text
        assert "modelyard_batch_size_count" in text

    call(app, scenario)
    assert max(driver.batches) > 1
    assert sum(driver.batches) == 11


def test_swagger_json_is_served() -> None:
    target = SimpleNamespace(run=len, input_sample={"data": [[1.0]]})
    app = create_app(Driver(target, "t"), RuntimeSettings(), title="svc")

    async def scenario(client: httpx.AsyncClient) -> None:
        document = (await client.get("/swagger.json")).json()
        assert document["info"]["title"] == "svc"
        assert document["definitions"]["ServiceInput"]["properties"]["data"]["type"] == "array"

    call(app, scenario)
