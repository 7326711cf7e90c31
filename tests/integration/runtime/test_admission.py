"""Above MODELYARD_MAX_CONCURRENT waiting requests a replica answers 429, never queues."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import Replica, write_context

SLOW_DRIVER = """
import time

def run(raw_body):
    time.sleep(0.05)
    return "done"
"""
CLIENTS = 24


def slow_replica(replicas: StartReplica, tmp_path: Path) -> Replica:
    return replicas(
        write_context(tmp_path / "ctx", SLOW_DRIVER), env={"MODELYARD_MAX_CONCURRENT": "2"}
    )


def assert_some_refused(responses: list[httpx.Response]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    for response in responses:
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
            assert "error" in response.json()
        else:
            assert response.json() == "done"


def test_keep_alive_clients_beyond_the_limit_get_429_with_retry_after(
    replicas: StartReplica, tmp_path: Path
) -> None:
    replica = slow_replica(replicas, tmp_path)
    together = threading.Barrier(CLIENTS)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            assert client.get("/").status_code == 200  # the connection is open and idle
            together.wait()
            return client.post("/score", json=1)

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert_some_refused(list(pool.map(post, range(CLIENTS))))
    metrics = httpx.get(f"{replica.url}/metrics").text
    assert 'modelyard_requests_total{route="/score",status="429"}' in metrics


def test_a_connection_per_request_beyond_the_limit_also_gets_429(
    replicas: StartReplica, tmp_path: Path
) -> None:
    # These wait in the kernel's accept queue, which uvloop drains one per loop turn.
    replica = slow_replica(replicas, tmp_path)

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{replica.url}/score", json=1, timeout=30)

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert_some_refused(list(pool.map(post, range(CLIENTS))))
