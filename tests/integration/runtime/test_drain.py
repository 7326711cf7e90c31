"""SIGTERM drains: a client scoring through a rolling restart sees no failed request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import (
    listening_socket,
    short_socket_path,
    write_context,
)


def test_a_replica_drains_under_keep_alive_load_with_zero_errors(
    replicas: StartReplica, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx")
    with listening_socket() as listener:
        leaving = replicas(context, listener=listener, admin_socket=short_socket_path("a.sock"))
        staying = replicas(context, listener=listener, admin_socket=short_socket_path("b.sock"))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/score"
        statuses: Counter[int] = Counter()
        served_by: Counter[int] = Counter()
        closed_by_server = 0
        errors: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)

        with httpx.Client(limits=limits, timeout=10) as client:

            def hammer() -> None:
                nonlocal closed_by_server
                while not stop.is_set():
                    try:
                        response = client.post(url, json={"x": 1})
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                        served_by[response.json()["pid"]] += 1
                        closed_by_server += response.headers.get("connection") == "close"

            threads = [threading.Thread(target=hammer) for _ in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            assert served_by[leaving.pid] > 0, "the load never reached the first replica"
            exit_code = leaving.terminate(timeout=15)
            after_exit = sum(served_by.values())
            time.sleep(0.3)
            stop.set()
            for thread in threads:
                thread.join(10)

        assert errors == []
        assert exit_code == 0, leaving.output()
        assert set(statuses) == {200}
        assert closed_by_server > 0  # open connections were told to reconnect elsewhere
        assert sum(served_by.values()) > after_exit  # and the other replica took over
        assert staying.process.poll() is None


def test_an_idle_replica_exits_0_promptly_on_sigterm(
    replicas: StartReplica, tmp_path: Path
) -> None:
    replica = replicas(write_context(tmp_path / "ctx"))
    assert httpx.post(f"{replica.url}/score", json=1).status_code == 200
    started = time.monotonic()
    assert replica.terminate() == 0
    assert time.monotonic() - started < 3


def test_an_idle_admin_connection_does_not_hold_the_drain_up(
    replicas: StartReplica, tmp_path: Path
) -> None:
    admin_socket = short_socket_path("admin.sock")
    replica = replicas(write_context(tmp_path / "ctx"), admin_socket=admin_socket)
    with replica.admin() as admin:
        assert admin.get("/metrics").status_code == 200  # and the connection stays open
        started = time.monotonic()
        assert replica.terminate() == 0
    assert time.monotonic() - started < 2  # not the 5 s keep-alive timeout
    assert not admin_socket.exists()
