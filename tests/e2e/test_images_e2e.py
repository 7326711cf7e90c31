"""Manifests and image builds end to end: the CLI, kill -9 mid-build, worker processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from modelyard.client import AccountPath, Client
from modelyard.services.image_build import PAUSE_ENV
from tests.e2e.conftest import Server, Worker, free_port

pytestmark = pytest.mark.slow

DRIVER = "def init():\n    pass\n\ndef run(raw):\n    import six\n    return raw\n"


def prepare_files(workdir: Path) -> None:
    (workdir / "model.pkl").write_bytes(b"model")
    (workdir / "score.py").write_text(DRIVER)
    (workdir / "requirements.txt").write_text("six\n")


def queue_build(server: Server, client: Client) -> tuple[str, str]:
    """Register, describe and queue an image through the client; returns ids."""
    prepare_files(server.workdir)
    model = client.register_model("m", path=server.workdir / "model.pkl")
    assets = [{"id": "driver", "url": client.upload(server.workdir / "score.py")["url"]}]
    requirements = client.upload(server.workdir / "requirements.txt")["url"]
    manifest = client.create_manifest(
        "scorer",
        driver="driver",
        assets=assets,
        model_ids=[model["id"]],
        pip_requirements=requirements,
    )
    image, operation_id = client.create_image(manifest["id"])
    return image["id"], operation_id


def wait_for_log(client: Client, image_id: str, text: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in client.read_build_log(image_id)[0]:
        assert time.monotonic() < deadline, f"build log never showed {text!r}"
        time.sleep(0.1)


def test_the_cli_creates_a_manifest_and_builds_an_image_with_progress(server: Server) -> None:
    prepare_files(server.workdir)
    model = json.loads(
        server.cli("model", "register", "--path", "model.pkl", "--name", "m", "--json").stdout
    )
    manifest = json.loads(
        server.cli(
            "manifest",
            "create",
            "--name",
            "scorer",
            "--driver",
            "score.py",
            "--requirements",
            "requirements.txt",
            "--model",
            model["id"],
            "--json",
        ).stdout
    )
    assert manifest["assets"][0]["id"] == "driver"
    built = server.cli("image", "create", "--manifest", manifest["id"], "--wait", timeout=300)
    assert "build succeeded" in built.stderr + built.stdout
    assert "built:" in built.stdout
    listed = json.loads(server.cli("image", "list", "--json").stdout)
    assert [i["creationState"] for i in listed] == ["Succeeded"]
    operation = json.loads(server.cli("operation", "show", listed[0]["operationId"]).stdout)
    assert operation["state"] == "Succeeded"


def test_a_failed_build_exits_non_zero_with_the_reason(server: Server) -> None:
    prepare_files(server.workdir)
    (server.workdir / "requirements.txt").write_text("nosuchpackage-modelyard-xyz==1.0\n")
    manifest = json.loads(
        server.cli(
            "manifest",
            "create",
            "--name",
            "broken",
            "--driver",
            "score.py",
            "--requirements",
            "requirements.txt",
            "--json",
        ).stdout
    )
    failed = server.cli(
        "image", "create", "--manifest", manifest["id"], "--wait", check=False, timeout=300
    )
    assert failed.returncode == 1
    assert "nosuchpackage-modelyard-xyz" in failed.stderr


def test_a_build_killed_with_the_server_is_taken_up_again_after_restart(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    server = Server(tmp_path / "home", workdir, free_port(), extra_env={PAUSE_ENV: "120"})
    server.start()
    try:
        with Client(server.url, server.token, AccountPath()) as client:
            image_id, operation_id = queue_build(server, client)
            wait_for_log(client, image_id, "test pause")
            assert client.get_operation(operation_id)["state"] == "Running"
        server.stop(signal.SIGKILL)
        staging = list((server.home / "images" / image_id).glob("*.tmp-*"))
        assert staging, "the kill should have left a half-written context behind"

        server.extra_env = {}
        server.start()
        with Client(server.url, server.token, AccountPath()) as client:
            status = client.wait_operation(operation_id, timeout_s=180)
            log = client.read_build_log(image_id)[0]
        assert status["state"] == "Succeeded", status
        assert status["attempts"] == 2
        assert "attempt 2" in log
        assert list((server.home / "images" / image_id).glob("*.tmp-*")) == []
    finally:
        server.stop()


def test_worker_processes_build_and_survive_one_of_them_being_killed(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    server = Server(tmp_path / "home", workdir, free_port(), extra_env={"MODELYARD_WORKERS": "0"})
    server.start()
    first = Worker(server, extra_env={PAUSE_ENV: "120"})
    second = Worker(server)
    try:
        client = Client(server.url, server.token, AccountPath())
        image_id, operation_id = queue_build(server, client)
        time.sleep(1.0)
        assert client.get_operation(operation_id)["state"] == "NotStarted"  # no embedded workers
        first.start()
        wait_for_log(client, image_id, "test pause")
        first.kill()
        second.start()
        status: dict[str, Any] = client.wait_operation(operation_id, timeout_s=180)
        assert status["state"] == "Succeeded", status
        assert status["attempts"] == 2
        client.close()
    finally:
        first.stop()
        second.stop()
        server.stop()
