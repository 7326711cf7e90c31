"""Replicas share one inherited listening socket (--fd) and each has its admin socket."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import (
    listening_socket,
    short_socket_path,
    write_context,
)


def test_two_replicas_serve_one_inherited_port(replicas: StartReplica, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx")
    with listening_socket() as listener:
        first = replicas(context, listener=listener, admin_socket=short_socket_path("a.sock"))
        second = replicas(context, listener=listener, admin_socket=short_socket_path("b.sock"))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        no_keep_alive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, limits=no_keep_alive) as client:

            def pid(_: int) -> int:
                response = client.post("/score", json=1)  # a new connection each time
                assert response.status_code == 200
                value: int = response.json()["pid"]
                return value

            with ThreadPoolExecutor(8) as pool:
                pids = set(pool.map(pid, range(160)))
        assert pids == {first.pid, second.pid}
        for replica in (first, second):
            with replica.admin() as admin:
                assert admin.get("/").text == "Healthy"


def test_a_stale_admin_socket_file_is_replaced_and_removed_at_exit(
    replicas: StartReplica, tmp_path: Path
) -> None:
    path = short_socket_path("admin.sock")
    path.write_text("left by a killed replica")
    replica = replicas(write_context(tmp_path / "ctx"), admin_socket=path)
    with replica.admin() as admin:
        assert admin.get("/").status_code == 200
    assert replica.terminate() == 0
    assert not path.exists()
