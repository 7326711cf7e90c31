"""Helpers to run real replica processes: write an image context, start, wait, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ECHO_DRIVER = """
import json, os
from modelyard.runtime import model_path

def init():
    global started
    started = True

def run(raw_body):
    body = json.loads(raw_body)
    if body == "boom":
        raise RuntimeError("driver failed on purpose")
    if body == "where":
        return {"modelDir": os.environ["AZUREML_MODEL_DIR"], "model": str(model_path("model"))}
    return {"echo": body, "pid": os.getpid()}

input_sample = {"data": [[1.0, 2.0]]}
output_sample = [0.5]
"""


def write_context(
    root: Path,
    driver: str | None = ECHO_DRIVER,
    *,
    builtin: str | None = None,
    model_files: dict[str, bytes] | None = None,
    name: str = "test-image",
) -> Path:
    """An image build context as the builder lays it out, with one model folder."""
    root.mkdir(parents=True, exist_ok=True)
    model_dir = root / "models" / "model" / "1"
    model_dir.mkdir(parents=True, exist_ok=True)
    for file_name, content in (model_files or {}).items():
        (model_dir / file_name).write_bytes(content)
    document: dict[str, Any] = {
        "imageName": name,
        "driver": None,
        "modelDir": "models/model/1",
        "models": [{"id": "m1", "name": "model", "version": 1, "path": "models/model/1"}],
    }
    if driver is not None:
        (root / "driver").mkdir(exist_ok=True)
        (root / "driver" / "score.py").write_text(textwrap.dedent(driver))
        document["driver"] = "driver/score.py"
    if builtin is not None:
        document["builtin"] = builtin
    (root / "image.json").write_text(json.dumps(document))
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening_socket() -> socket.socket:
    """A listening TCP socket, as the supervisor creates one for a service."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def short_socket_path(name: str) -> Path:
    """A unix socket path short enough for the 108-byte limit (pytest's tmp paths are long)."""
    return Path(tempfile.mkdtemp(prefix="my-", dir="/tmp")) / name


@dataclass
class Replica:
    process: subprocess.Popen[Any]
    url: str
    logs: Path
    admin_socket: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        out = (self.logs / "stdout.txt").read_text(errors="replace")
        err = (self.logs / "stderr.txt").read_text(errors="replace")
        return f"--- stdout\n{out}\n--- stderr\n{err}"

    def stdout(self) -> str:
        return (self.logs / "stdout.txt").read_text(errors="replace")

    def admin(self) -> httpx.Client:
        assert self.admin_socket is not None
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.admin_socket)), base_url="http://replica"
        )

    def terminate(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"replica did not exit after SIGTERM\n{self.output()}") from None


def start_replica(
    context: Path,
    logs: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    listener: socket.socket | None = None,
    admin_socket: Path | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
) -> Replica:
    """Start `python -m modelyard.runtime` on `context` and wait until it answers `GET /`."""
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "modelyard.runtime", "--image-dir", str(context), *args]
    pass_fds: tuple[int, ...] = ()
    if listener is not None:
        command += ["--fd", str(listener.fileno())]
        pass_fds = (listener.fileno(),)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    else:
        port = port or free_port()
        command += ["--port", str(port)]
        url = f"http://127.0.0.1:{port}"
    if admin_socket is not None:
        command += ["--admin-socket", str(admin_socket)]
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELYARD_") and k not in ("AZUREML_MODEL_DIR", "PORT", "HOST")
    }
    environment.update(env or {})
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            command, cwd=context, env=environment, stdout=out, stderr=err, pass_fds=pass_fds
        )
    replica = Replica(process, url, logs, admin_socket)
    if wait:
        wait_ready(replica)
    return replica


def wait_ready(replica: Replica, timeout: float = 30) -> None:
    """Poll `GET /` (through the admin socket when there is one) until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if replica.admin_socket is not None:
                if _unix_health(replica.admin_socket):
                    return
            elif httpx.get(f"{replica.url}/", timeout=1).status_code == 200:
                return
        except (httpx.TransportError, OSError):
            pass
        if replica.process.poll() is not None:
            raise AssertionError(
                f"replica exited with {replica.process.returncode}\n{replica.output()}"
            )
        if time.monotonic() > deadline:
            replica.process.kill()
            raise AssertionError(f"replica not ready in {timeout}s\n{replica.output()}")
        time.sleep(0.05)


def _unix_health(path: Path) -> bool:
    # A raw probe: httpx leaks its socket when a unix-socket connect fails.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1 200")
