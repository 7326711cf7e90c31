"""Realtime services end to end: real server, real replicas, real load over loopback."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.client import AccountPath, Client
from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow

SLEEPY = (
    "import json, time\n"
    "def init():\n    pass\n"
    "def run(raw):\n"
    "    data = json.loads(raw)\n"
    "    time.sleep(data.get('sleep', 0))\n"
    "    return data\n"
)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, server.token, AccountPath()) as connected:
        yield connected


def deploy_driver(server: Server, client: Client, name: str, **settings: Any) -> dict[str, Any]:
    (server.workdir / "score.py").write_text(SLEEPY)
    (server.workdir / "m.bin").write_bytes(b"m")
    model = client.register_model("m", path=server.workdir / "m.bin")
    assets = [{"id": "driver", "url": client.upload(server.workdir / "score.py")["url"]}]
    manifest = client.create_manifest(name, driver="driver", assets=assets, model_ids=[model["id"]])
    image, operation_id = client.create_image(manifest["id"])
    assert client.wait_operation(operation_id, timeout_s=180)["state"] == "Succeeded"
    service, operation_id = client.create_service(name, image["id"], **settings)
    status = client.wait_operation(operation_id, timeout_s=180)
    assert status["state"] == "Succeeded", status
    return client.get_service(service["id"])


class Load:
    """Threads scoring continuously; counts answers by outcome."""

    def __init__(self, uri: str, key: str, threads: int, body: dict[str, Any]) -> None:
        self.codes: dict[str, int] = {}
        self.when_failed: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(uri, key, body)) for _ in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, uri: str, key: str, body: dict[str, Any]) -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            while not self._stop.is_set():
                try:
                    outcome = str(http.post(uri, json=body).status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    self.codes[outcome] = self.codes.get(outcome, 0) + 1
                    if outcome != "200":
                        self.when_failed.append(time.monotonic())


def test_deploy_a_scikit_learn_model_with_one_command(server: Server, tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=200).fit([[0, 0], [1, 1], [0, 1], [1, 0]], [0, 1, 1, 0])
    joblib.dump(model, server.workdir / "model.pkl")
    deployed = server.cli("deploy", "model.pkl", "--name", "xor", timeout=600)
    assert "scoring URI: http://127.0.0.1:" in deployed.stdout
    assert "curl -X POST" in deployed.stdout
    scored = json.loads(
        server.cli("service", "score", "xor", "--data", '{"data": [[0, 0], [1, 1]]}').stdout
    )
    assert scored == model.predict([[0, 0], [1, 1]]).tolist()
    logs = server.cli("service", "logs", "xor").stdout
    assert "replica-1.log" in logs
    listed = server.cli("service", "list").stdout
    assert "xor" in listed


def test_a_replica_killed_under_load_comes_back(server: Server, client: Client) -> None:
    service = deploy_driver(server, client, "sturdy", numReplicas=2)
    key = client.get_service_keys(service["id"])["primaryKey"]
    victim = service["replicas"]["instances"][0]
    with Load(service["scoringUri"], key, threads=4, body={"x": 1}) as load:
        time.sleep(0.5)
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            replicas = client.get_service(service["id"])["replicas"]
            restarted = [r for r in replicas["instances"] if r["id"] == victim["id"]]
            if replicas["ready"] == 2 and restarted and restarted[0]["restarts"] >= 1:
                break
            assert time.monotonic() < deadline, replicas
            time.sleep(0.2)
        time.sleep(1.0)
    assert load.codes.get("200", 0) > 50
    # Only requests in flight on the killed replica may fail, right when it died.
    late = [t for t in load.when_failed if t > killed_at + 1.0]
    assert late == [], load.codes


def test_the_autoscaler_scales_up_under_load_and_down_when_idle(
    server: Server, client: Client
) -> None:
    service = deploy_driver(
        server,
        client,
        "elastic",
        maxConcurrentRequestsPerContainer=4,
        autoScaler={
            "autoscaleEnabled": True,
            "minReplicas": 1,
            "maxReplicas": 3,
            "refreshPeriodInSeconds": 1,
            "targetUtilization": 50,
        },
    )
    key = client.get_service_keys(service["id"])["primaryKey"]
    assert service["replicas"]["desired"] == 1
    with Load(service["scoringUri"], key, threads=6, body={"sleep": 0.2}):
        deadline = time.monotonic() + 30
        while client.get_service(service["id"])["replicas"]["ready"] < 2:
            assert time.monotonic() < deadline, "never scaled up"
            time.sleep(0.3)
    deadline = time.monotonic() + 45
    while client.get_service(service["id"])["replicas"]["desired"] > 1:
        assert time.monotonic() < deadline, "never scaled down"
        time.sleep(0.5)


def test_a_restarted_server_brings_services_back_on_the_same_uri(
    server: Server, client: Client
) -> None:
    service = deploy_driver(server, client, "durable")
    key = client.get_service_keys(service["id"])["primaryKey"]
    assert (
        httpx.post(
            service["scoringUri"], json={"a": 1}, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    server.stop(signal.SIGKILL)  # replicas follow their parent (PR_SET_PDEATHSIG)
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.post(service["scoringUri"], json={}, timeout=1)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "replicas outlived a killed server"
        time.sleep(0.2)
    server.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = httpx.post(
                service["scoringUri"],
                json={"a": 2},
                headers={"Authorization": f"Bearer {key}"},
                timeout=5,
            )
            if answer.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "service not back after restart"
        time.sleep(0.3)
    assert answer.json() == {"a": 2}
