"""A replica listens only once its driver is initialised, and a bad image stops it with 3."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import (
    Replica,
    free_port,
    wait_ready,
    write_context,
)

SLOW_INIT_DRIVER = """
import os, pathlib, time

def init():
    pathlib.Path(os.environ["INIT_MARKER"]).write_text("started")
    time.sleep(0.6)

def run(raw_body):
    return "ready"
"""


def run_until_exit(context: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "modelyard.runtime", "--image-dir", str(context), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
        cwd=tmp_path,
    )


def test_nothing_answers_until_init_has_run(replicas: StartReplica, tmp_path: Path) -> None:
    marker = tmp_path / "init-started"
    port = free_port()
    replica = replicas(
        write_context(tmp_path / "ctx", SLOW_INIT_DRIVER),
        port=port,
        env={"INIT_MARKER": str(marker)},
        wait=False,
    )
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    wait_ready(replica)


def test_a_driver_whose_init_fails_exits_3_saying_why(tmp_path: Path) -> None:
    driver = "def init():\n    raise RuntimeError('no model here')\n\ndef run(raw):\n    return 1\n"
    result = run_until_exit(write_context(tmp_path / "ctx", driver), tmp_path, "--port", "0")
    assert result.returncode == 3
    assert "no model here" in result.stderr


def test_a_folder_without_image_json_exits_3_saying_why(tmp_path: Path) -> None:
    result = run_until_exit(tmp_path, tmp_path, "--port", "0")
    assert result.returncode == 3
    assert "image.json" in result.stderr


def test_an_unknown_builtin_driver_exits_3_naming_the_known_ones(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", driver=None, builtin="caffe")
    result = run_until_exit(context, tmp_path, "--port", "0")
    assert result.returncode == 3
    assert "sklearn" in result.stderr


def test_a_taken_port_exits_3_before_init(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        result = run_until_exit(write_context(tmp_path / "ctx"), tmp_path, "--port", port)
    assert result.returncode == 3
    assert "in use" in result.stderr


def test_with_pdeathsig_a_replica_exits_when_its_parent_dies(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx")
    port = free_port()
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen(sys.argv[1:])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
            sys.executable,
            "-m",
            "modelyard.runtime",
            "--image-dir",
            str(context),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MODELYARD_PDEATHSIG": "1"},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.stdout.close()
    try:
        (tmp_path / "stdout.txt").touch()
        (tmp_path / "stderr.txt").touch()
        wait_ready(Replica(parent, f"http://127.0.0.1:{port}", tmp_path))
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while alive(child):
            assert time.monotonic() < deadline, "the replica outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        if alive(child):
            os.kill(child, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's parent may reap it
