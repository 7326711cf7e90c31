"""`LocalCompute`: the local compute target; services' replicas as supervised processes.

Deploying binds the service's port once and keeps that socket for the service's life;
replicas inherit it. A rolling update starts the new version's replicas on the same
socket, waits until every one is ready, and only then drains the old ones, so the
scoring URI answers throughout. One supervisor thread ticks every service.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from modelyard.compute.base import CancelToken, LogSink, ReplicaSetSpec, ReplicaSetStatus
from modelyard.compute.local.replica import Replica, admin_socket_dir, wait_ready
from modelyard.compute.local.replicaset import ReplicaSet
from modelyard.compute.local.resources import Capacity, CpuPinner, check_fits
from modelyard.domain.errors import Conflict, DeploymentFailed, OperationCancelled
from modelyard.domain.webservices import ServiceConfig

_log = structlog.get_logger("modelyard.compute")
TICK_S = 0.25


class LocalCompute:
    def __init__(self, host: str = "127.0.0.1", *, drain_s: float = 30.0) -> None:
        self.host = host
        self.drain_s = drain_s
        self.capacity = Capacity.of_this_machine()
        self._pinner = CpuPinner()
        self._sets: dict[str, ReplicaSet] = {}
        self._deploying: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Every replica is started from this one thread: replicas ask the kernel
        # (PR_SET_PDEATHSIG) to stop them when the thread that started them ends, so
        # that thread must live exactly as long as this compute target.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="modelyard-spawner")

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="modelyard-supervisor", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            sets, self._sets = list(self._sets.values()), {}
        for replica_set in sets:
            replica_set.stop_all(timeout_s=min(self.drain_s, 10))
        self._spawner.shutdown(wait=True)

    def _launch(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        return self._spawner.submit(start).result()

    # -- the ComputeTarget protocol -----------------------------------------------------

    def deploy(
        self, spec: ReplicaSetSpec, *, log: LogSink, cancel: CancelToken, timeout_s: float
    ) -> None:
        spec.service_dir.mkdir(parents=True, exist_ok=True)
        _write_keys(spec.service_dir, spec.key_hashes)
        with self._lock:
            serial = self._deploying.setdefault(spec.service_id, threading.Lock())
        with serial:  # one create or roll of a service at a time
            with self._lock:
                current = self._sets.get(spec.service_id)
            if current is None:
                self._create(spec, log=log, cancel=cancel, timeout_s=timeout_s)
            else:
                self._roll(current, spec, log=log, cancel=cancel, timeout_s=timeout_s)

    def remove(self, service_id: str) -> None:
        with self._lock:
            replica_set = self._sets.pop(service_id, None)
            self._deploying.pop(service_id, None)
        if replica_set is not None:
            replica_set.stop_all(timeout_s=self.drain_s)
            with contextlib.suppress(OSError):  # the per-service folder of admin sockets
                admin_socket_dir(replica_set.spec.service_dir).rmdir()

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...]) -> None:
        with self._lock:
            replica_set = self._sets.get(service_id)
        if replica_set is not None:
            _write_keys(replica_set.spec.service_dir, key_hashes)

    def status(self, service_id: str) -> ReplicaSetStatus | None:
        with self._lock:
            replica_set = self._sets.get(service_id)
        return replica_set.status() if replica_set is not None else None

    def check_fits(self, config: ServiceConfig, others: list[ServiceConfig]) -> None:
        check_fits(config, others, self.capacity)

    # -- internals ----------------------------------------------------------------------

    def _create(
        self, spec: ReplicaSetSpec, *, log: LogSink, cancel: CancelToken, timeout_s: float
    ) -> None:
        sock = _listen(self.host, spec.port)
        replica_set = ReplicaSet(spec, sock, self._pinner, self.drain_s, self._launch)
        count = replica_set.desired
        log(f"starting {count} replica(s) on {self.host}:{spec.port}")
        started = replica_set.spawn(spec, count)
        failed = wait_ready(started, timeout_s, cancel)
        if failed is not None:
            replica_set.replicas = started
            replica_set.stop_all(timeout_s=5)
            raise _failure(failed.log_tail(), cancel)
        replica_set.replicas = started
        with self._lock:
            self._sets[spec.service_id] = replica_set
        log(f"{count} replica(s) ready")

    def _roll(
        self,
        replica_set: ReplicaSet,
        spec: ReplicaSetSpec,
        *,
        log: LogSink,
        cancel: CancelToken,
        timeout_s: float,
    ) -> None:
        count = spec.config.initial_replicas
        if spec.config.autoscaler.enabled:
            count = min(
                max(replica_set.desired, spec.config.autoscaler.min_replicas, 1),
                spec.config.autoscaler.max_replicas,
            )
        log(f"rolling update: starting {count} new replica(s) beside the old ones")
        started = replica_set.spawn(spec, count)
        failed = wait_ready(started, timeout_s, cancel)
        if failed is not None:
            tail = failed.log_tail()
            for replica in started:
                replica.terminate()
            for replica in started:
                replica.wait_stopped(5)
                self._pinner.give_back(replica.cpus)
            raise _failure(tail, cancel)
        with replica_set.lock:
            old = replica_set.replicas
            replica_set.adopt_config(spec)
            replica_set.desired = count
            replica_set.replicas = started
            replica_set.drain(old)
        _wait_stopped_accepting(old)
        log(f"{count} new replica(s) ready; {len(old)} old one(s) no longer accept and drain")

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                sets = list(self._sets.values())
            now = time.monotonic()
            for replica_set in sets:
                try:
                    replica_set.tick(now)
                except Exception:
                    _log.exception("supervisor tick failed", service=replica_set.spec.service_name)


def _wait_stopped_accepting(replicas: list[Replica], timeout_s: float = 10.0) -> None:
    """Until old replicas stop accepting, a new connection may still reach the old
    version; the update is complete only once none of them accepts any more. A replica
    removes its admin socket when it stops accepting, which is what is watched here."""
    deadline = time.monotonic() + timeout_s
    while any(r.alive and r.admin_socket.exists() for r in replicas):
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(f"port {port} is in use by another program", code="PortInUse") from exc
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _write_keys(service_dir: Path, key_hashes: tuple[str, ...]) -> None:
    """Atomically: a replica polling the file sees the old keys or the new, never half."""
    target = service_dir / "keys.json"
    staging = service_dir / f".keys.{os.getpid()}.{threading.get_ident()}.tmp"
    staging.write_text(json.dumps({"sha256": list(key_hashes)}))
    staging.chmod(0o600)
    staging.replace(target)


def _failure(tail: str, cancel: CancelToken) -> Exception:
    if cancel.is_set():
        return OperationCancelled("deployment cancelled")
    return DeploymentFailed(
        "the service's replicas did not become ready; last lines of the replica log: "
        + (tail[-1500:] or "(empty)")
    )
