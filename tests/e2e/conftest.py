"""Start the real `modelyard serve` process and talk to it over loopback HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    home: Path
    workdir: Path
    port: int
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.home.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.extra_env,
            "MODELYARD_URL": self.url,
            "MODELYARD_HOME": str(self.home),
        }

    def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--port",
            str(self.port),
            "--home",
            str(self.home),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env()
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in 30 s: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "modelyard", *args],
            cwd=self.workdir,
            env={**self.env(), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"modelyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    running = Server(home=tmp_path / "home", workdir=workdir, port=free_port())
    running.start()
    yield running
    running.stop()


@dataclass
class Worker:
    """A `modelyard worker` process sharing a server's data dir and database."""

    server: Server
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "modelyard", "worker", "--home", str(self.server.home)]
        if self.server.database_url:
            args += ["--database-url", self.server.database_url]
        with self.server.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                cwd=self.server.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.server.env(), **self.extra_env},
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
