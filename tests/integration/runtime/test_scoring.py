"""A replica process answers the Azure scoring contract: health, score, keys, errors, docs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.integration.runtime.conftest import PRIMARY_KEY, SECONDARY_KEY
from tests.integration.runtime.replicas import Replica

PRIMARY = {"Authorization": f"Bearer {PRIMARY_KEY}"}


def test_health_answers_healthy_without_a_key(echo_replica: Replica) -> None:
    response = httpx.get(f"{echo_replica.url}/")
    assert response.status_code == 200
    assert response.text == "Healthy"
    assert response.headers["x-ms-request-id"]


def test_score_with_either_key_runs_the_driver(echo_replica: Replica) -> None:
    for key in (PRIMARY_KEY, SECONDARY_KEY):
        response = httpx.post(
            f"{echo_replica.url}/score",
            json={"data": [1]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200
        assert response.json() == {"echo": {"data": [1]}, "pid": echo_replica.pid}


def test_score_without_or_with_a_wrong_key_is_401(echo_replica: Replica) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        response = httpx.post(f"{echo_replica.url}/score", json=1, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "error" in response.json()


def test_the_driver_sees_its_model_folder(echo_replica: Replica) -> None:
    where = httpx.post(f"{echo_replica.url}/score", json="where", headers=PRIMARY).json()
    assert where["modelDir"].endswith("models/model/1")
    assert where["model"] == where["modelDir"]


def test_a_driver_exception_is_a_500_and_the_replica_keeps_serving(echo_replica: Replica) -> None:
    failed = httpx.post(f"{echo_replica.url}/score", json="boom", headers=PRIMARY)
    assert failed.status_code == 500
    assert failed.json() == {"error": "driver failed on purpose"}
    assert httpx.post(f"{echo_replica.url}/score", json=2, headers=PRIMARY).status_code == 200
    assert "Traceback" in echo_replica.output()  # logged on stderr, not sent


def test_swagger_json_describes_score_from_the_drivers_samples(echo_replica: Replica) -> None:
    document = httpx.get(f"{echo_replica.url}/swagger.json").json()
    assert document["swagger"] == "2.0"
    assert document["info"]["title"] == "test-image"
    assert document["definitions"]["ServiceInput"]["properties"]["data"] == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}},
    }
    assert document["definitions"]["ServiceOutput"]["items"] == {"type": "number"}
    assert document["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]


def test_metrics_count_scoring_requests(echo_replica: Replica) -> None:
    httpx.post(f"{echo_replica.url}/score", json=3, headers=PRIMARY)
    text = httpx.get(f"{echo_replica.url}/metrics").text
    assert 'modelyard_requests_total{route="/score",status="200"}' in text
    assert 'modelyard_request_duration_seconds_bucket{le="0.001",route="/score"}' in text


def test_the_admin_socket_serves_health_and_metrics(echo_replica: Replica) -> None:
    with echo_replica.admin() as admin:
        health = admin.get("/")
        assert health.status_code == 200
        assert health.text == "Healthy"
        assert "modelyard_requests_in_flight" in admin.get("/metrics").text


def test_scored_requests_are_collected_as_json_lines(echo_replica: Replica) -> None:
    response = httpx.post(
        f"{echo_replica.url}/score",
        json={"collect": "me"},
        headers={**PRIMARY, "x-ms-client-request-id": "collect-1"},
    )
    assert response.headers["x-ms-request-id"] == "collect-1"
    collected = Path(echo_replica.extra["service_dir"]) / "collected"
    deadline = time.monotonic() + 3
    record = None
    while record is None and time.monotonic() < deadline:
        for path in collected.glob("*/*/replica-r1.jsonl"):
            for line in path.read_text().splitlines():
                if json.loads(line)["requestId"] == "collect-1":
                    record = json.loads(line)
        time.sleep(0.1)
    assert record is not None, "no collected record within 3 s"
    assert record["request"] == {"collect": "me"}
    assert record["response"] == {"echo": {"collect": "me"}, "pid": echo_replica.pid}
    assert record["status"] == 200
    assert record["durationMs"] >= 0
    assert record["time"].endswith("Z")


def test_app_insights_logs_one_json_line_per_request(echo_replica: Replica) -> None:
    httpx.get(f"{echo_replica.url}/nowhere", headers={"x-ms-client-request-id": "log-1"})
    deadline = time.monotonic() + 3
    lines: list[dict[str, object]] = []
    while not lines and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = [
            json.loads(line) for line in echo_replica.stdout().splitlines() if '"log-1"' in line
        ]
    assert lines, "no request log line within 3 s"
    assert lines[0]["path"] == "/nowhere"
    assert lines[0]["status"] == 404
    assert set(lines[0]) == {"time", "requestId", "path", "status", "durationMs"}
