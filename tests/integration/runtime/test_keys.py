"""Service keys are re-read from the keys file: a regenerated key stops working within 1 s."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.integration.runtime.conftest import StartReplica, write_keys
from tests.integration.runtime.replicas import write_context


def score(url: str, key: str) -> int:
    return httpx.post(
        f"{url}/score", json=1, headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_a_regenerated_key_stops_working_within_a_second(
    replicas: StartReplica, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    write_keys(keys, "old-primary", "secondary")
    replica = replicas(write_context(tmp_path / "ctx"), env={"MODELYARD_KEYS_FILE": str(keys)})
    assert score(replica.url, "old-primary") == 200

    write_keys(keys, "new-primary", "secondary")
    rewritten = time.monotonic()
    while score(replica.url, "old-primary") == 200:
        assert time.monotonic() - rewritten < 1.0, "the old key still works after 1 s"
        time.sleep(0.02)
    assert score(replica.url, "new-primary") == 200
    assert score(replica.url, "secondary") == 200
    assert time.monotonic() - rewritten < 1.0


def test_a_missing_keys_file_admits_nobody_until_it_appears(
    replicas: StartReplica, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    replica = replicas(write_context(tmp_path / "ctx"), env={"MODELYARD_KEYS_FILE": str(keys)})
    assert score(replica.url, "any") == 401

    write_keys(keys, "primary")
    deadline = time.monotonic() + 2
    while score(replica.url, "primary") != 200:
        assert time.monotonic() < deadline, "the new keys file was not read"
        time.sleep(0.05)
