"""Fixtures: replica processes that are always stopped, and one shared echo replica."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.runtime.replicas import (
    Replica,
    short_socket_path,
    start_replica,
    write_context,
)

PRIMARY_KEY = "primary-key-for-tests"
SECONDARY_KEY = "secondary-key-for-tests"

StartReplica = Callable[..., Replica]


def write_keys(path: Path, *keys: str) -> None:
    """Write a keys file atomically, as the supervisor does."""
    staging = path.with_suffix(".tmp")
    staging.write_text(
        json.dumps({"sha256": [hashlib.sha256(k.encode()).hexdigest() for k in keys]})
    )
    staging.replace(path)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[StartReplica]:
    """Start replicas with `replicas(context, ...)`; each is killed at the end of the test."""
    started: list[Replica] = []

    def start(context: Path, **kwargs: Any) -> Replica:
        logs = tmp_path / f"replica-{len(started)}"
        replica = start_replica(context, logs, **kwargs)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.poll() is None:
            replica.process.kill()
            replica.process.wait(5)


@pytest.fixture(scope="module")
def echo_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """An echo driver with keys, data collection and request logs on, plus an admin socket."""
    root = tmp_path_factory.mktemp("echo")
    keys = root / "keys.json"
    write_keys(keys, PRIMARY_KEY, SECONDARY_KEY)
    replica = start_replica(
        write_context(root / "context"),
        root / "logs",
        admin_socket=short_socket_path("admin.sock"),
        env={
            "MODELYARD_KEYS_FILE": str(keys),
            "MODELYARD_DATA_COLLECTION": "1",
            "MODELYARD_APP_INSIGHTS": "1",
        },
        args=("--service-dir", str(root / "service"), "--replica-id", "r1"),
    )
    replica.extra["service_dir"] = root / "service"
    yield replica
    replica.terminate()
