"""The replicas of one service and the rules that keep them right.

Each supervisor tick: a crashed replica is restarted with exponential back-off, a
starting one becomes ready when it answers its health check, one above its memory
reservation is killed (and so restarted), the autoscaler samples utilization and
sets the desired count, and replicas are started or drained to match it.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from dataclasses import dataclass, field

import structlog

from modelyard.compute.base import ReplicaInfo, ReplicaSetSpec, ReplicaSetStatus
from modelyard.compute.local.autoscaler import Autoscaler
from modelyard.compute.local.replica import Launcher, Replica
from modelyard.compute.local.resources import CpuPinner, resident_bytes

_log = structlog.get_logger("modelyard.compute")

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
HEALTHY_RESET_S = 60.0


@dataclass
class _Restart:
    due: float
    delay: float


@dataclass
class ReplicaSet:
    spec: ReplicaSetSpec
    sock: socket.socket
    pinner: CpuPinner
    drain_s: float
    launcher: Launcher
    replicas: list[Replica] = field(default_factory=list)
    draining: list[tuple[Replica, float]] = field(default_factory=list)
    desired: int = 0
    autoscaler: Autoscaler | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    _restarts: dict[str, _Restart] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.adopt_config(self.spec)

    def adopt_config(self, spec: ReplicaSetSpec) -> None:
        self.spec = spec
        self.desired = spec.config.initial_replicas
        settings = spec.config.autoscaler
        self.autoscaler = Autoscaler(settings) if settings.enabled else None

    def spawn(self, spec: ReplicaSetSpec, count: int) -> list[Replica]:
        started = []
        for _ in range(count):
            replica = Replica(
                spec,
                str(next(self._ids)),
                self.sock.fileno(),
                self.pinner.take(spec.config.reservation.cpu),
                self.launcher,
            )
            replica.spawn()
            started.append(replica)
        return started

    def drain(self, replicas: list[Replica]) -> None:
        """Stop replicas gracefully; the tick reaps them (SIGKILL past the drain time)."""
        deadline = time.monotonic() + self.drain_s + 5
        for replica in replicas:
            replica.terminate()
            self._restarts.pop(replica.replica_id, None)
            self.draining.append((replica, deadline))

    def stop_all(self, timeout_s: float) -> None:
        with self.lock:
            everything = self.replicas + [r for r, _ in self.draining]
            self.replicas, self.draining = [], []
        for replica in everything:
            replica.terminate()
        for replica in everything:
            replica.wait_stopped(timeout_s)
            self.pinner.give_back(replica.cpus)
        self.sock.close()

    def tick(self, now: float) -> None:
        with self.lock:
            self._reap(now)
            for replica in self.replicas:
                self._check(replica, now)
            self._autoscale(now)
            self._reconcile()

    def status(self) -> ReplicaSetStatus:
        with self.lock:
            infos = [
                _info(r, "ready" if r.ready else ("starting" if r.alive else "crashed"))
                for r in self.replicas
            ]
            infos += [_info(r, "draining") for r, _ in self.draining]
            ready = sum(1 for r in self.replicas if r.ready)
        return ReplicaSetStatus(self.spec.service_id, self.desired, ready, infos)

    def _check(self, replica: Replica, now: float) -> None:
        if not replica.alive:
            restart = self._restarts.get(replica.replica_id)
            if restart is None:
                delay = self._backoff(replica)
                _log.warning(
                    "replica exited; restarting",
                    service=self.spec.service_name,
                    replica=replica.replica_id,
                    in_s=delay,
                    code=replica.process.returncode if replica.process else None,
                )
                replica.ready = False
                self._restarts[replica.replica_id] = _Restart(now + delay, delay)
            elif now >= restart.due:
                del self._restarts[replica.replica_id]
                replica.restarts += 1
                replica.spawn()
            return
        if not replica.ready:
            replica.ready = replica.probe(timeout_s=0.2)
            return
        limit = replica.spec.config.reservation.memory_bytes
        rss = resident_bytes(replica.pid) if limit and replica.pid else None
        if limit and rss and rss > limit:
            _log.warning(
                "replica above its memory reservation; killed",
                service=self.spec.service_name,
                replica=replica.replica_id,
                resident=rss,
                limit=limit,
            )
            replica.kill()

    def _backoff(self, replica: Replica) -> float:
        started = replica.started_at.timestamp() if replica.started_at else 0
        if time.time() - started > HEALTHY_RESET_S:
            replica.restarts = 0
        return float(min(BACKOFF_MAX_S, BACKOFF_START_S * 2**replica.restarts))

    def _autoscale(self, now: float) -> None:
        if self.autoscaler is None:
            return
        ready = [r for r in self.replicas if r.ready]
        if ready:
            readings = [load for r in ready if (load := r.load()) is not None]
            if readings:
                inflight = sum(x for x, _ in readings)
                waiting = max(b for _, b in readings)
                capacity = len(ready) * self.spec.config.max_concurrent
                self.autoscaler.observe((inflight + waiting) / capacity)
        decided = self.autoscaler.decide(len(self.replicas), now)
        if decided is not None and decided != self.desired:
            _log.info(
                "autoscaling", service=self.spec.service_name, replicas=decided, was=self.desired
            )
            self.desired = decided

    def _reconcile(self) -> None:
        missing = self.desired - len(self.replicas)
        if missing > 0:
            self.replicas += self.spawn(self.spec, missing)
        elif missing < 0:
            # Drain the newest extras: the oldest have warm caches and open connections.
            extra = self.replicas[missing:]
            self.replicas = self.replicas[:missing]
            self.drain(extra)

    def _reap(self, now: float) -> None:
        remaining = []
        for replica, deadline in self.draining:
            if replica.alive and now < deadline:
                remaining.append((replica, deadline))
                continue
            replica.kill()
            replica.close()
            self.pinner.give_back(replica.cpus)
        self.draining = remaining


def _info(replica: Replica, state: str) -> ReplicaInfo:
    return ReplicaInfo(
        replica.replica_id,
        replica.pid,
        state,
        replica.restarts,
        replica.started_at,
        replica.spec.image_id,
    )
