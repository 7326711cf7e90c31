"""The compute target protocol, and what the services layer hands a target.

The services layer speaks only this protocol, so a Ray Serve or Kubernetes target can
be added without touching it. A target owns the replicas of each service: it starts
them, keeps the desired number ready, replaces them on update without dropping a
request, and removes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from modelyard.domain.webservices import ServiceConfig

LogSink = Callable[[str], None]


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class ReplicaSetSpec:
    """One version of a service: which image, how many replicas, with which settings."""

    service_id: str
    service_name: str
    image_id: str
    context_dir: Path  # the image's build context (entrypoint, image.json, models)
    python: Path  # the image's environment interpreter
    port: int  # the service's public port: the scoring URI never changes
    config: ServiceConfig
    key_hashes: tuple[str, ...]  # sha256 of each valid key
    service_dir: Path  # keys, logs and collected data of this service


@dataclass(frozen=True)
class ReplicaInfo:
    replica_id: str
    pid: int | None
    state: str  # starting, ready, draining, crashed, stopped
    restarts: int
    started_at: datetime | None
    image_id: str


@dataclass(frozen=True)
class ReplicaSetStatus:
    service_id: str
    desired: int
    ready: int
    replicas: list[ReplicaInfo] = field(default_factory=list)


class ComputeTarget(Protocol):
    def start(self) -> None:
        """Begin supervising (health checks, restarts, autoscaling)."""

    def shutdown(self) -> None:
        """Stop every replica this target started (server shutdown)."""

    def deploy(
        self, spec: ReplicaSetSpec, *, log: LogSink, cancel: CancelToken, timeout_s: float
    ) -> None:
        """Create the service, or roll it to `spec`; returns once the new replicas serve.

        On failure the previous version (if any) keeps serving and an error is raised.
        """

    def remove(self, service_id: str) -> None:
        """Stop and forget the service's replicas; its port is free afterwards."""

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...]) -> None:
        """Replace the accepted keys on every replica (effective within a second)."""

    def status(self, service_id: str) -> ReplicaSetStatus | None: ...

    def check_fits(self, config: ServiceConfig, others: list[ServiceConfig]) -> None:
        """Raise Conflict when `config`'s reservation does not fit beside `others`."""
