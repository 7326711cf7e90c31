"""Realtime services through the MMS API: real replica processes, real scoring over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest

from tests.integration.api.test_images_api import (
    create_image,
    create_manifest,
    wait,
)
from tests.integration.api.test_models_api import (
    ACCOUNTS,
    HOSTING,
    V_ACCOUNTS,
    V_HOSTING,
    register,
    write,
)
from tests.integration.conftest import Api

ECHO = b"""
import json, os, time
def init():
    pass
def run(raw):
    data = json.loads(raw)
    if data.get("fail"):
        raise ValueError("asked to fail")
    if data.get("sleep"):
        time.sleep(data["sleep"])
    return {"echo": data, "version": os.environ.get("MODEL_VERSION", "1")}
"""


def built_image(api: Api, driver: bytes = ECHO, name: str = "echo") -> str:
    model = register(api, write(api, "m.pkl", b"model")).json()
    body = {
        "name": name,
        "driverProgram": "driver",
        "modelIds": [model["id"]],
        "assets": [{"id": "driver", "url": write(api, f"{name}.py", driver)}],
        "targetRuntime": {"runtimeType": "Python", "properties": {}},
    }
    manifest = api.http.post(f"{ACCOUNTS}/manifests", params=V_ACCOUNTS, json=body)
    assert manifest.status_code == 200, manifest.text
    image, operation_id = create_image(api, manifest.json()["id"])
    assert wait(api, operation_id)["state"] == "Succeeded"
    return str(image["id"])


def create_service(api: Api, image_id: str, name: str = "svc", **settings: Any) -> dict[str, Any]:
    response = api.http.post(
        f"{ACCOUNTS}/services",
        params=V_ACCOUNTS,
        json={"name": name, "imageId": image_id, **settings},
    )
    assert response.status_code == 202, response.text
    operation_id = response.headers["Operation-Location"].rsplit("/", 1)[-1]
    status = wait(api, operation_id, timeout_s=120)
    assert status["state"] == "Succeeded", status
    shown: dict[str, Any] = api.http.get(
        f"{ACCOUNTS}/services/{response.json()['id']}", params=V_ACCOUNTS
    ).json()
    return shown


def keys_of(api: Api, service_id: str) -> dict[str, str]:
    keys: dict[str, str] = api.http.get(
        f"{ACCOUNTS}/services/{service_id}/keys", params=V_ACCOUNTS
    ).json()
    return keys


def score(service: dict[str, Any], key: str | None, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(service["scoringUri"], json=body, headers=headers, timeout=30)


@pytest.fixture
def image_id(api: Api) -> str:
    return built_image(api)


def test_a_service_serves_its_image_with_keys(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    assert service["state"] == "Succeeded"
    assert service["scoringUri"].startswith("http://127.0.0.1:")
    assert service["image"]["id"] == image_id
    assert service["manifest"]["webserviceType"] == "Realtime"
    assert len(service["models"]) == 1
    assert (service["replicas"]["desired"], service["replicas"]["ready"]) == (1, 1)
    assert service["replicas"]["instances"][0]["state"] == "ready"
    keys = keys_of(api, service["id"])
    assert score(service, keys["primaryKey"], {"x": 1}).json()["echo"] == {"x": 1}
    assert score(service, keys["secondaryKey"], {"x": 2}).status_code == 200
    assert score(service, None, {"x": 3}).status_code == 401
    assert score(service, "wrong", {"x": 4}).status_code == 401
    assert (
        "primaryKey"
        not in api.http.get(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).text
    )
    swagger = httpx.get(service["swaggerUri"])
    assert swagger.status_code == 200


def test_a_regenerated_key_stops_working_within_a_second(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    old = keys_of(api, service["id"])
    new = api.http.post(
        f"{ACCOUNTS}/services/{service['id']}/regenerateKeys",
        params=V_ACCOUNTS,
        json={"keyType": "Primary"},
    ).json()
    assert new["primaryKey"] != old["primaryKey"]
    assert new["secondaryKey"] == old["secondaryKey"]
    deadline = time.monotonic() + 1.0
    while score(service, old["primaryKey"], {}).status_code != 401:
        assert time.monotonic() < deadline, "the old key still works after a second"
        time.sleep(0.05)
    assert score(service, new["primaryKey"], {}).status_code == 200
    assert score(service, new["secondaryKey"], {}).status_code == 200


def test_a_driver_error_is_500_with_its_message_and_the_replica_keeps_serving(
    api: Api, image_id: str
) -> None:
    service = create_service(api, image_id)
    key = keys_of(api, service["id"])["primaryKey"]
    failed = score(service, key, {"fail": True})
    assert failed.status_code == 500
    assert "asked to fail" in failed.text
    assert "Traceback" not in failed.text
    assert score(service, key, {"ok": True}).status_code == 200


def test_requests_above_the_concurrency_limit_get_429(api: Api, image_id: str) -> None:
    service = create_service(api, image_id, maxConcurrentRequestsPerContainer=1)
    key = keys_of(api, service["id"])["primaryKey"]
    results: list[httpx.Response] = []

    def slow() -> None:
        results.append(score(service, key, {"sleep": 0.5}))

    threads = [threading.Thread(target=slow) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in results)
    assert 200 in codes
    assert 429 in codes
    assert all(r.headers.get("retry-after") for r in results if r.status_code == 429)


def test_a_rolling_update_under_load_fails_no_request(api: Api, image_id: str) -> None:
    service = create_service(api, image_id, numReplicas=2)
    key = keys_of(api, service["id"])["primaryKey"]
    newer = built_image(api, ECHO.replace(b'"1")', b'"2")'), name="echo2")
    errors: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
            while not stop.is_set():
                try:
                    response = client.post(service["scoringUri"], json={"n": 1})
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text}")
                    else:
                        versions.add(response.json()["version"])
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        updated = api.http.put(
            f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS, json={"imageId": newer}
        )
        assert updated.status_code == 202
        operation_id = updated.headers["Operation-Location"].rsplit("/", 1)[-1]
        assert wait(api, operation_id, timeout_s=120)["state"] == "Succeeded"
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert "2" in versions
    shown = api.http.get(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).json()
    assert shown["image"]["id"] == newer
    assert shown["scoringUri"] == service["scoringUri"]
    deployments = api.http.get(
        f"{ACCOUNTS}/deployments", params={**V_ACCOUNTS, "serviceId": service["id"]}
    ).json()["value"]
    assert [d["imageId"] for d in deployments] == [image_id, newer]
    assert deployments[0]["expiredAt"] is not None
    assert deployments[1]["expiredAt"] is None
    assert all(d["status"] == "Succeeded" for d in deployments)
    one = api.http.get(f"{ACCOUNTS}/deployments/{deployments[1]['id']}", params=V_ACCOUNTS)
    assert one.json()["serviceName"] == "svc"


def test_delete_stops_the_replicas_and_frees_the_port(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    port = int(service["scoringUri"].split(":")[2].split("/")[0])
    assert (
        api.http.delete(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).status_code
        == 200
    )
    assert (
        api.http.delete(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).status_code
        == 204
    )
    assert (
        api.http.get(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).status_code == 404
    )
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_collected_data_is_readable_through_the_api(api: Api, image_id: str) -> None:
    service = create_service(api, image_id, dataCollection={"storageEnabled": True})
    key = keys_of(api, service["id"])["primaryKey"]
    assert score(service, key, {"collect": "me"}).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        text = api.http.get(
            f"{ACCOUNTS}/services/{service['id']}/collectedData", params=V_ACCOUNTS
        ).text
        if "collect" in text:
            break
        assert time.monotonic() < deadline, "no collected data after 5 s"
        time.sleep(0.2)


def test_services_list_by_every_filter(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    model_id = service["models"][0]["id"]
    for params in (
        {"serviceName": "svc"},
        {"imageId": image_id},
        {"modelId": model_id},
        {"modelName": "churn"},
        {"manifestId": service["manifest"]["id"]},
        {"manifestName": "echo"},
    ):
        listed = api.http.get(f"{ACCOUNTS}/services", params={**V_ACCOUNTS, **params}).json()
        assert [s["id"] for s in listed["value"]] == [service["id"]], params
    none = api.http.get(f"{ACCOUNTS}/services", params={**V_ACCOUNTS, "serviceName": "x"})
    assert none.json()["value"] == []


def test_a_taken_name_is_409(api: Api, image_id: str) -> None:
    create_service(api, image_id)
    again = api.http.post(
        f"{ACCOUNTS}/services", params=V_ACCOUNTS, json={"name": "svc", "imageId": image_id}
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("settings", "status", "hint"),
    [
        ({"numReplicas": 2, "autoScaler": {"autoscaleEnabled": True}}, 400, "numReplicas"),
        (
            {"autoScaler": {"autoscaleEnabled": True, "targetUtilization": 101}},
            400,
            "targetUtilization",
        ),
        ({"autoScaler": {"autoscaleEnabled": True, "maxReplicas": 0}}, 400, "maxReplicas"),
        (
            {"autoScaler": {"autoscaleEnabled": True, "refreshPeriodInSeconds": 0}},
            400,
            "refreshPeriodInSeconds",
        ),
        ({"numReplicas": -1}, 400, "numReplicas"),
        ({"maxConcurrentRequestsPerContainer": 0}, 400, "maxConcurrentRequestsPerContainer"),
        ({"containerResourceReservation": {"cpu": "lots"}}, 400, "cpu"),
        ({"containerResourceReservation": {"memory": "12 parsecs"}}, 400, "memory"),
        ({"containerResourceReservation": {"cpu": "1000"}}, 409, "cpu"),
        ({"containerResourceReservation": {"memory": "100000Gi"}}, 409, "memory"),
        ({"imageId": "no-such-image"}, 400, "imageId"),
        ({"name": "bad name"}, 400, "name"),
    ],
)
def test_bad_service_requests_are_refused_and_store_nothing(
    api: Api, image_id: str, settings: dict[str, Any], status: int, hint: str
) -> None:
    body = {"name": "svc", "imageId": image_id, **settings}
    response = api.http.post(f"{ACCOUNTS}/services", params=V_ACCOUNTS, json=body)
    assert response.status_code == status, response.text
    assert hint in response.text
    assert api.http.get(f"{ACCOUNTS}/services", params=V_ACCOUNTS).json()["value"] == []


def test_the_2017_body_deploys_locally_and_refuses_a_kubeconfig(api: Api, image_id: str) -> None:
    refused = api.http.post(
        f"{HOSTING}/services",
        params=V_HOSTING,
        json={"name": "k8s", "imageId": image_id, "kubeConfig": "apiVersion: v1 ...secret..."},
    )
    assert refused.status_code == 400
    assert "secret" not in refused.text
    created = api.http.post(
        f"{HOSTING}/services",
        params=V_HOSTING,
        json={"name": "legacy", "imageId": image_id, "kubeConfig": "", "acrImagePullSecret": ""},
    )
    assert created.status_code == 202
    operation_id = created.headers["Operation-Location"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 120
    while True:
        state = api.http.get(f"{HOSTING}/operations/{operation_id}", params=V_HOSTING).json()
        if state["state"] not in ("NotStarted", "Running"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["state"] == "Succeeded"


def test_an_image_that_is_not_built_cannot_be_deployed(api: Api) -> None:
    api.http.app.state.workers.stop()  # type: ignore[attr-defined]
    manifest = create_manifest(api)
    image, _ = create_image(api, manifest["id"])
    response = api.http.post(
        f"{ACCOUNTS}/services", params=V_ACCOUNTS, json={"name": "early", "imageId": image["id"]}
    )
    assert response.status_code == 400
    assert "not built" in response.text


def test_the_2017_update_builds_an_image_from_a_manifest_first(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    key = keys_of(api, service["id"])["primaryKey"]
    model = register(api, write(api, "m2.pkl", b"model two")).json()
    body = {
        "name": "echo3",
        "driverProgram": "driver",
        "modelIds": [model["id"]],
        "assets": [{"id": "driver", "url": write(api, "echo3.py", ECHO.replace(b'"1")', b'"3")'))}],
        "targetRuntime": {"runtimeType": "Python", "properties": {}},
    }
    manifest = api.http.post(f"{ACCOUNTS}/manifests", params=V_ACCOUNTS, json=body).json()
    updated = api.http.put(
        f"{HOSTING}/services/{service['id']}", params=V_HOSTING, json={"manifestId": manifest["id"]}
    )
    assert updated.status_code == 202, updated.text
    operation_id = updated.headers["Operation-Location"].rsplit("/", 1)[-1]
    assert wait(api, operation_id, timeout_s=180)["state"] == "Succeeded"
    assert score(service, key, {}).json()["version"] == "3"
    shown = api.http.get(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).json()
    assert shown["manifest"]["id"] == manifest["id"]


def test_a_failed_update_keeps_the_old_version_serving(api: Api, image_id: str) -> None:
    service = create_service(api, image_id)
    key = keys_of(api, service["id"])["primaryKey"]
    broken = built_image(api, b"raise RuntimeError('cannot even import')\n", name="broken")
    updated = api.http.put(
        f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS, json={"imageId": broken}
    )
    operation_id = updated.headers["Operation-Location"].rsplit("/", 1)[-1]
    status = wait(api, operation_id, timeout_s=120)
    assert status["state"] == "Failed"
    assert "cannot even import" in status["error"]["message"]
    assert score(service, key, {"still": "here"}).status_code == 200
    shown = api.http.get(f"{ACCOUNTS}/services/{service['id']}", params=V_ACCOUNTS).json()
    assert shown["image"]["id"] == image_id
    deployments = api.http.get(
        f"{ACCOUNTS}/deployments", params={**V_ACCOUNTS, "serviceId": service["id"]}
    ).json()["value"]
    assert [d["status"] for d in deployments] == ["Succeeded", "Failed"]
    assert deployments[0]["expiredAt"] is None
