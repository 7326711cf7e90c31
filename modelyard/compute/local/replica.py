"""One replica: a `python -m modelyard.runtime` process in the image's environment.

It inherits the service's listening socket (every replica of a service accepts from
the same one, so the scoring URI never changes and closing one replica's copy never
drops a queued connection) and serves a private unix socket too, through which the
supervisor checks readiness and reads metrics without going through the public port.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from modelyard.compute.base import ReplicaSetSpec

# Variables of the server's own environment that must not leak into an image's.
# Runs a function on the thread that starts every replica (see LocalCompute).
Launcher = Callable[[Callable[[], "subprocess.Popen[bytes]"]], "subprocess.Popen[bytes]"]

_SCRUBBED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "UV_PYTHON")
_INFLIGHT = "modelyard_requests_in_flight"
_BACKLOG = "modelyard_accept_backlog"  # connections waiting on the shared socket


def admin_socket_dir(service_dir: Path) -> Path:
    """Short: unix socket paths are limited to 108 bytes, service dirs can be long."""
    digest = hashlib.sha256(str(service_dir).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"modelyard-{os.getuid()}" / digest
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def replica_environment(spec: ReplicaSetSpec) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    config = spec.config
    env.update(
        MODELYARD_KEYS_FILE=str(spec.service_dir / "keys.json"),
        MODELYARD_MAX_CONCURRENT=str(config.max_concurrent),
        MODELYARD_PDEATHSIG="1",
        MODELYARD_DATA_COLLECTION="1" if config.storage_enabled else "0",
        MODELYARD_APP_INSIGHTS="1" if config.app_insights else "0",
        MODELYARD_BATCHING="1" if config.batching.enabled else "0",
        MODELYARD_BATCH_MAX_SIZE=str(config.batching.max_size),
        MODELYARD_BATCH_MAX_WAIT_MS=str(config.batching.max_wait_ms),
    )
    env.pop("AZUREML_MODEL_DIR", None)
    return env


class Replica:
    def __init__(
        self,
        spec: ReplicaSetSpec,
        replica_id: str,
        listen_fd: int,
        cpus: set[int] | None,
        launcher: Launcher,
    ) -> None:
        self.spec = spec
        self.replica_id = replica_id
        self.cpus = cpus
        self.restarts = 0
        self.started_at: datetime | None = None
        self.ready = False
        self.draining = False
        self.process: subprocess.Popen[bytes] | None = None
        self._listen_fd = listen_fd
        self._launch = launcher
        self.admin_socket = admin_socket_dir(spec.service_dir) / f"{replica_id}.sock"
        self.log_path = spec.service_dir / "logs" / f"replica-{replica_id}.log"
        self._client: httpx.Client | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.admin_socket.unlink(missing_ok=True)
        args = [
            str(self.spec.python),
            "-m",
            "modelyard.runtime",
            "--image-dir",
            str(self.spec.context_dir),
            "--fd",
            str(self._listen_fd),
            "--admin-socket",
            str(self.admin_socket),
            "--service-dir",
            str(self.spec.service_dir),
            "--replica-id",
            self.replica_id,
        ]
        with self.log_path.open("ab") as log:
            stamp = datetime.now(UTC).isoformat()
            log.write(
                f"--- {stamp} starting replica {self.replica_id} "
                f"(image {self.spec.image_id})\n".encode()
            )
            log.flush()
            self.process = self._launch(
                lambda: subprocess.Popen(
                    args,
                    cwd=self.spec.context_dir,
                    env=replica_environment(self.spec),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(self._listen_fd,),
                    start_new_session=True,
                )
            )
        if self.cpus:
            # Set from here rather than in a preexec_fn (unsafe in a threaded server);
            # threads the replica starts later inherit it.
            os.sched_setaffinity(self.process.pid, self.cpus)
        self.started_at = datetime.now(UTC)
        self.ready = False

    def probe(self, timeout_s: float = 0.5) -> bool:
        """Ready means the runtime answers `GET /` (it serves only after init())."""
        if not self.alive or not self.admin_socket.exists():
            return False
        try:
            return self._admin().get("/", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def load(self) -> tuple[float, float] | None:
        """(requests in flight, connections waiting to be accepted), from the replica's
        metrics; None when unreadable. The backlog is the shared socket's, the same on
        every replica of the service."""
        if not self.ready or not self.alive:
            return None
        try:
            text = self._admin().get("/metrics", timeout=0.5).text
        except httpx.HTTPError:
            return None
        values: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in (_INFLIGHT, _BACKLOG):
                try:
                    values[name] = float(value)
                except ValueError:
                    return None
        if _INFLIGHT not in values:
            return None
        return values[_INFLIGHT], values.get(_BACKLOG, 0.0)

    def terminate(self) -> None:
        """Ask the replica to drain: it stops accepting and finishes what it has."""
        self.draining = True
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.close()

    def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(5)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.admin_socket.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _admin(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                transport=httpx.HTTPTransport(uds=str(self.admin_socket)),
                base_url="http://replica",
            )
        return self._client


def wait_ready(replicas: list[Replica], timeout_s: float, cancelled: object) -> Replica | None:
    """Wait until every replica is ready; returns the first that died or timed out."""
    deadline = time.monotonic() + timeout_s
    pending = list(replicas)
    while pending:
        for replica in list(pending):
            if replica.probe():
                replica.ready = True
                pending.remove(replica)
            elif not replica.alive:
                return replica
        if not pending:
            return None
        if time.monotonic() > deadline or getattr(cancelled, "is_set", lambda: False)():
            return pending[0]
        time.sleep(0.05)
    return None
