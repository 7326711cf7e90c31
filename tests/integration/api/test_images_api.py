"""Manifests, image builds and operations through both MMS route families.

The app runs in-process on a real database with its embedded workers; builds use the
real uv against the package registry (uv's cache makes repeats fast).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.services.image_build import PAUSE_ENV
from tests.integration.api.test_models_api import (
    ACCOUNTS,
    HOSTING,
    V_ACCOUNTS,
    V_HOSTING,
    model_rows,
    register,
    write,
)
from tests.integration.conftest import Api, FileServer

DRIVER = b"""
import json, os
def init():
    global greeting
    greeting = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "m.pkl")).read()
def run(raw):
    import six
    return {"echo": json.loads(raw), "model": greeting, "six": six.__name__}
"""


def manifest_body(api: Api, model_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "scorer",
        "description": "scores churn",
        "driverProgram": "driver",
        "assets": [
            {
                "id": "driver",
                "url": write(api, "score.py", DRIVER),
                "mimeType": "application/x-python",
            }
        ],
        "modelIds": [model_id],
        "modelType": "Registered",
        "targetRuntime": {
            "runtimeType": "Python",
            "properties": {"pipRequirements": write(api, "requirements.txt", b"six\n")},
        },
        "webserviceType": "Realtime",
    }
    body.update(overrides)
    return body


def create_manifest(api: Api, **overrides: Any) -> dict[str, Any]:
    model = register(api, write(api, "m.pkl", b"a model")).json()
    response = api.http.post(
        f"{ACCOUNTS}/manifests",
        params=V_ACCOUNTS,
        json=manifest_body(api, model["id"], **overrides),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def create_image(api: Api, manifest_id: str, **extra: Any) -> tuple[dict[str, Any], str]:
    response = api.http.post(
        f"{ACCOUNTS}/images",
        params=V_ACCOUNTS,
        json={
            "name": "churn-image",
            "imageType": "Docker",
            "manifestId": manifest_id,
            "computeResourceId": "/subscriptions/s/resourcegroups/rg/providers/"
            "Microsoft.MachineLearningCompute/operationalizationClusters/c",
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    location = response.headers["Operation-Location"]
    assert "?" not in location  # clients take the last path segment as the id
    return response.json(), location.rsplit("/", 1)[-1]


def wait(api: Api, operation_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status: dict[str, Any] = api.http.get(
            f"{ACCOUNTS}/operations/{operation_id}", params=V_ACCOUNTS
        ).json()
        if status["state"] in ("Succeeded", "Failed", "Cancelled"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} did not end")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- manifests ----------------------------------------------------------------------------


def test_a_manifest_stores_its_assets_and_answers_200(api: Api) -> None:
    manifest = create_manifest(api)
    assert (manifest["name"], manifest["version"]) == ("scorer", 1)
    assert manifest["webserviceType"] == "Realtime"
    assert manifest["assets"][0]["id"] == "driver"
    assert manifest["targetRuntime"]["runtimeType"] == "Python"
    shown = api.http.get(f"{ACCOUNTS}/manifests/{manifest['id']}", params=V_ACCOUNTS).json()
    assert shown == manifest


def test_manifests_list_by_model_and_name(api: Api) -> None:
    first = create_manifest(api)
    second = create_manifest(api, name="other")
    by_model = api.http.get(
        f"{ACCOUNTS}/manifests", params={**V_ACCOUNTS, "modelId": first["modelIds"][0]}
    ).json()
    assert [m["id"] for m in by_model["value"]] == [first["id"]]
    by_name = api.http.get(
        f"{ACCOUNTS}/manifests", params={**V_ACCOUNTS, "manifestName": "other"}
    ).json()
    assert [m["id"] for m in by_name["value"]] == [second["id"]]


def test_a_model_used_by_a_manifest_cannot_be_deleted(api: Api) -> None:
    manifest = create_manifest(api)
    response = api.http.delete(f"{ACCOUNTS}/models/{manifest['modelIds'][0]}", params=V_ACCOUNTS)
    assert response.status_code == 409


def test_the_2017_manifest_body_needs_no_name(api: Api) -> None:
    model = register(api, write(api, "m.pkl", b"x")).json()
    body = manifest_body(api, model["id"])
    del body["name"]
    body["assets"][0]["unPack"] = False
    response = api.http.post(f"{HOSTING}/manifests", params=V_HOSTING, json=body)
    assert response.status_code == 200, response.text


def _bad_manifest_cases(api: Api, file_server: FileServer, model_id: str) -> list[Any]:
    base = manifest_body(api, model_id)
    return [
        ({**base, "modelIds": ["not-a-model"]}, "modelIds"),
        ({**base, "driverProgram": "score"}, "driverProgram"),
        ({**base, "targetRuntime": {"runtimeType": "TLC", "properties": {}}}, "runtimeType"),
        (
            {
                **base,
                "assets": [
                    *base["assets"],
                    {"id": "data", "url": f"{file_server.url}/missing.bin"},
                ],
            },
            "404",
        ),
        ({**base, "description": "d" * 513}, "description"),
        ({**base, "assets": [{**base["assets"][0], "id": "bad_id"}]}, "assets.id"),
        (
            {
                **base,
                "targetRuntime": {
                    "runtimeType": "Python",
                    "properties": {"pipRequirements": write(api, "bad.txt", b"-e ./local\n")},
                },
            },
            "pipRequirements",
        ),
        (
            {
                **base,
                "targetRuntime": {
                    "runtimeType": "Python",
                    "properties": {"condaEnvFile": write(api, "env.yml", b"dependencies: [: bad")},
                },
            },
            "condaEnvFile",
        ),
    ]


def test_bad_manifests_are_400_and_store_nothing(api: Api, file_server: FileServer) -> None:
    model = register(api, write(api, "m.pkl", b"x")).json()
    blobs_before = sorted(api.blob_files)
    for body, hint in _bad_manifest_cases(api, file_server, model["id"]):
        response = api.http.post(f"{ACCOUNTS}/manifests", params=V_ACCOUNTS, json=body)
        assert response.status_code == 400, (hint, response.text)
        assert hint in response.text, (hint, response.text)
        assert response.json()["statusCode"] == 400
    listed = api.http.get(f"{ACCOUNTS}/manifests", params=V_ACCOUNTS).json()
    assert listed["value"] == []
    assert sorted(api.blob_files) == blobs_before
    assert model_rows(api) == 1


# -- images -------------------------------------------------------------------------------


def test_an_image_builds_an_environment_with_the_manifests_requirements(api: Api) -> None:
    manifest = create_manifest(api)
    image, operation_id = create_image(api, manifest["id"])
    assert image["creationState"] in ("NotStarted", "Running")
    status = wait(api, operation_id)
    assert status["state"] == "Succeeded", status
    assert status["operationType"] == "Image"
    assert status["resourceLocation"].rsplit("/", 1)[-1] == image["id"]
    assert status["endTime"]

    built = api.http.get(f"{ACCOUNTS}/images/{image['id']}", params=V_ACCOUNTS).json()
    assert built["creationState"] == "Succeeded"
    assert built["manifest"]["id"] == manifest["id"]
    assert built["manifest"]["webserviceType"] == "Realtime"
    assert built["computeResourceId"].endswith("/operationalizationClusters/c")
    context = Path(built["imageLocation"])
    assert (context / "Dockerfile").is_file()
    assert (context / "entrypoint.sh").is_file()
    assert "six==" in (context / "requirements.lock").read_text()

    log = api.http.get(built["imageBuildLogUri"])
    assert log.status_code == 200
    assert "build succeeded" in log.text
    assert "no container engine" in log.text

    python = (context / "local-python").read_text().strip()
    assert subprocess.run([python, "-c", "import six"], check=False).returncode == 0
    assert subprocess.run([sys.executable, "-c", "import six"], check=False).returncode != 0
    assert (
        subprocess.run(
            [python, "-c", "import modelyard.runtime, fastapi"], capture_output=True, check=False
        ).returncode
        != 0
    )  # the runtime is there, the server's packages are not


def test_the_entrypoint_starts_the_scoring_runtime_outside_a_container(api: Api) -> None:
    manifest = create_manifest(api)
    image, operation_id = create_image(api, manifest["id"])
    assert wait(api, operation_id)["state"] == "Succeeded"
    context = Path(
        api.http.get(f"{ACCOUNTS}/images/{image['id']}", params=V_ACCOUNTS).json()["imageLocation"]
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AZUREML_MODEL_DIR"}
    process = subprocess.Popen([str(context / "entrypoint.sh"), "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "runtime exited"
                assert time.monotonic() < deadline, "runtime did not start"
                time.sleep(0.1)
        assert health.status_code == 200
        scored = httpx.post(f"http://127.0.0.1:{port}/score", json={"x": 1})
        assert scored.json() == {"echo": {"x": 1}, "model": "a model", "six": "six"}
    finally:
        process.terminate()
        process.wait(10)


def test_a_second_image_reuses_the_cached_environment(api: Api) -> None:
    manifest = create_manifest(api)
    first, first_op = create_image(api, manifest["id"])
    assert wait(api, first_op)["state"] == "Succeeded"
    second, second_op = create_image(api, manifest["id"])
    assert wait(api, second_op)["state"] == "Succeeded"
    assert second["version"] == first["version"] + 1
    log = api.http.get(f"{ACCOUNTS}/images/{second['id']}/buildLog", params=V_ACCOUNTS).text
    assert "reused from the cache" in log


def test_an_unresolvable_requirement_fails_the_build_saying_why(api: Api) -> None:
    requirements = write(api, "unresolvable.txt", b"nosuchpackage-modelyard-xyz==1.0\n")
    manifest = create_manifest(
        api,
        targetRuntime={"runtimeType": "Python", "properties": {"pipRequirements": requirements}},
    )
    image, operation_id = create_image(api, manifest["id"])
    status = wait(api, operation_id)
    assert status["state"] == "Failed"
    error = status["error"]
    assert error["statusCode"] == 400
    assert "nosuchpackage-modelyard-xyz" in error["message"]
    log_uri = error["details"][0]["message"]
    assert f"/images/{image['id']}/buildLog?api-version=" in log_uri
    assert "nosuchpackage-modelyard-xyz" in api.http.get(log_uri).text
    shown = api.http.get(f"{ACCOUNTS}/images/{image['id']}", params=V_ACCOUNTS).json()
    assert shown["creationState"] == "Failed"
    assert shown["imageLocation"] is None
    assert not (api.settings.home / "images" / image["id"] / "context").exists()


def test_images_list_by_manifest_and_the_password_is_write_only(api: Api) -> None:
    manifest = create_manifest(api)
    other = create_manifest(api, name="other")
    registry = {"user": "u", "location": "registry.example/ns", "password": "hunter2-secret"}
    mine, _ = create_image(api, manifest["id"], registryInfo=registry)
    create_image(api, other["id"])
    for params in ({"manifestId": manifest["id"]}, {"manifestName": "scorer"}):
        listed = api.http.get(f"{ACCOUNTS}/images", params={**V_ACCOUNTS, **params})
        assert [i["id"] for i in listed.json()["value"]] == [mine["id"]]
        assert "hunter2-secret" not in listed.text
    assert (
        "hunter2-secret"
        not in api.http.get(f"{ACCOUNTS}/images/{mine['id']}", params=V_ACCOUNTS).text
    )


def test_the_2017_image_body_takes_the_manifests_name(api: Api) -> None:
    manifest = create_manifest(api)
    response = api.http.post(
        f"{HOSTING}/images",
        params=V_HOSTING,
        json={
            "manifestId": manifest["id"],
            "description": "",
            "imageType": "Docker",
            "registryInfo": {"user": "u", "location": "l", "password": "p"},
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["name"] == "scorer"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"manifestId": "nope"}, "manifestId"),
        ({"imageType": "Tarball"}, "imageType"),
        ({"name": "bad name"}, "name"),
    ],
)
def test_bad_image_requests_are_400(api: Api, change: dict[str, str], field: str) -> None:
    manifest = create_manifest(api)
    body = {"name": "img", "imageType": "Docker", "manifestId": manifest["id"], **change}
    response = api.http.post(f"{ACCOUNTS}/images", params=V_ACCOUNTS, json=body)
    assert response.status_code == 400
    assert field in response.text
    assert api.http.get(f"{ACCOUNTS}/images", params=V_ACCOUNTS).json()["value"] == []


# -- operations ---------------------------------------------------------------------------


def test_a_running_build_can_be_cancelled_and_leaves_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PAUSE_ENV, "60")
    manifest = create_manifest(api)
    image, operation_id = create_image(api, manifest["id"])
    log_url = f"{ACCOUNTS}/images/{image['id']}/buildLog"
    deadline = time.monotonic() + 120
    while "test pause" not in api.http.get(log_url, params=V_ACCOUNTS).text:
        assert time.monotonic() < deadline, "build never reached the pause"
        time.sleep(0.1)
    cancelled = api.http.post(f"{ACCOUNTS}/operations/{operation_id}/cancel", params=V_ACCOUNTS)
    assert cancelled.status_code == 202
    status = wait(api, operation_id, timeout_s=10)
    assert status["state"] == "Cancelled"
    folder = api.settings.home / "images" / image["id"]
    assert not (folder / "context").exists()
    assert list(folder.glob("*.tmp-*")) == []


def test_a_queued_operation_cancels_at_once(api: Api) -> None:
    api.http.app.state.workers.stop()  # type: ignore[attr-defined]
    manifest = create_manifest(api)
    _, operation_id = create_image(api, manifest["id"])
    api.http.post(f"{ACCOUNTS}/operations/{operation_id}/cancel", params=V_ACCOUNTS)
    status = api.http.get(f"{ACCOUNTS}/operations/{operation_id}", params=V_ACCOUNTS).json()
    assert status["state"] == "Cancelled"


def test_an_unknown_operation_is_404(api: Api) -> None:
    create_manifest(api)
    response = api.http.get(f"{ACCOUNTS}/operations/nope", params=V_ACCOUNTS)
    assert response.status_code == 404
    assert response.json()["code"] == "OperationNotFound"


def test_the_2017_routes_build_an_image_end_to_end(api: Api) -> None:
    url = write(api, "m.pkl", b"a model")
    body = {"name": "m", "url": url, "mimeType": "application/octet-stream"}
    model = api.http.post(f"{HOSTING}/models", params=V_HOSTING, json=body).json()
    manifest_request = manifest_body(api, model["id"])
    del manifest_request["name"]
    manifest = api.http.post(f"{HOSTING}/manifests", params=V_HOSTING, json=manifest_request)
    assert manifest.status_code == 200
    created = api.http.post(
        f"{HOSTING}/images",
        params=V_HOSTING,
        json={
            "manifestId": manifest.json()["id"],
            "imageType": "Docker",
            "registryInfo": {"user": "u", "location": "r.example", "password": "secret-pw"},
        },
    )
    assert created.status_code == 202
    operation_id = created.headers["Operation-Location"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 180
    while True:
        status = api.http.get(f"{HOSTING}/operations/{operation_id}", params=V_HOSTING).json()
        if status["state"] not in ("NotStarted", "Running"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["state"] == "Succeeded", status
    image_id = status["resourceLocation"].rsplit("/", 1)[-1]
    image = api.http.get(f"{HOSTING}/images/{image_id}", params=V_HOSTING)
    assert "secret-pw" not in image.text
    python = (Path(image.json()["imageLocation"]) / "local-python").read_text().strip()
    assert subprocess.run([python, "-c", "import six"], check=False).returncode == 0
    listed = api.http.get(f"{HOSTING}/images", params=V_HOSTING).json()
    assert [i["id"] for i in listed] == [image_id]
