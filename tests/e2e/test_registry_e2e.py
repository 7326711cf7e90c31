"""The model registry end to end: real server process, real HTTP, the CLI and the client."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from modelyard.client import AccountPath, Client, NotFound
from tests.e2e.conftest import Server, free_port

pytestmark = pytest.mark.slow


def test_first_start_writes_a_private_admin_token_and_serves_health(server: Server) -> None:
    token_file = server.home / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert "paths" in httpx.get(f"{server.url}/openapi.json").json()
    assert (server.home / "modelyard.db").exists()


def test_the_cli_registers_lists_shows_downloads_and_deletes(server: Server) -> None:
    model_file = server.workdir / "model.pkl"
    model_file.write_bytes(b"a scikit-learn model, pretend" * 1000)

    registered = server.cli(
        "model", "register", "--path", "model.pkl", "--name", "churn", "--tag", "prod", "--json"
    )
    model = json.loads(registered.stdout)
    assert (model["name"], model["version"]) == ("churn", 1)

    listed = json.loads(server.cli("model", "list", "--json").stdout)
    assert [m["id"] for m in listed] == [model["id"]]
    table = server.cli("model", "list").stdout
    assert "churn" in table

    shown = json.loads(server.cli("model", "show", model["id"]).stdout)
    assert shown["sha256"] == model["sha256"]

    out = server.workdir / "copy.pkl"
    server.cli("model", "download", model["id"], "--out", str(out))
    assert out.read_bytes() == model_file.read_bytes()

    server.cli("model", "delete", model["id"])
    missing = server.cli("model", "show", model["id"], check=False)
    assert missing.returncode == 1
    assert "ModelNotFound" in missing.stderr


def test_cli_errors_are_one_line_not_a_traceback(server: Server) -> None:
    (server.workdir / "m.pkl").write_bytes(b"x")
    result = server.cli("model", "register", "--path", "m.pkl", "--name", "bad_name", check=False)
    assert result.returncode == 1
    assert "name" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_client_registers_from_a_url_and_walks_pages(server: Server) -> None:
    artifact = server.workdir / "m.onnx"
    artifact.write_bytes(b"onnx")
    with Client(server.url, server.token, AccountPath("s", "rg", "a")) as client:
        ids = [client.register_model("m", url=artifact.as_uri())["id"] for _ in range(5)]
        assert [m["id"] for m in client.list_models(page_size=2)] == ids
        with pytest.raises(NotFound):
            client.get_model("00000000-0000-4000-8000-000000000000")


def test_tokens_are_managed_from_the_cli(server: Server) -> None:
    created = json.loads(
        server.cli("token", "create", "--name", "reader", "--role", "Reader", "--json").stdout
    )
    secret = created["token"]
    listed = server.cli("token", "list", "--json").stdout
    assert secret not in listed
    (server.workdir / "m.pkl").write_bytes(b"x")
    denied = server.cli(
        "model", "--token", secret, "register", "--path", "m.pkl", "--name", "m", check=False
    )
    assert denied.returncode == 1
    assert "Forbidden" in denied.stderr
    server.cli("token", "revoke", created["id"])
    revoked = server.cli("model", "--token", secret, "list", check=False)
    assert "Unauthorized" in revoked.stderr


def test_models_survive_a_restart(server: Server) -> None:
    (server.workdir / "m.pkl").write_bytes(b"persist me")
    model = json.loads(
        server.cli("model", "register", "--path", "m.pkl", "--name", "keep", "--json").stdout
    )
    server.stop()
    server.start()
    shown = json.loads(server.cli("model", "show", model["id"]).stdout)
    assert shown == model
    out = server.workdir / "back.pkl"
    server.cli("model", "download", model["id"], "--out", str(out))
    assert out.read_bytes() == b"persist me"


@pytest.mark.postgres
def test_the_server_runs_on_postgresql(tmp_path: Path, pg_database_url: str) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    running = Server(tmp_path / "home", workdir, free_port(), database_url=pg_database_url)
    running.start()
    try:
        (workdir / "m.pkl").write_bytes(b"pg")
        model = json.loads(
            running.cli("model", "register", "--path", "m.pkl", "--name", "pg", "--json").stdout
        )
        assert json.loads(running.cli("model", "show", model["id"]).stdout)["name"] == "pg"
        assert not (running.home / "modelyard.db").exists()
    finally:
        running.stop()
