"""containerResourceReservation on one machine: admission, CPU pinning, memory watch.

cgroup v2 would enforce both limits in the kernel, but it is writable only on some
hosts; everywhere this module works the same way: a service whose reservation does
not fit beside the others' is refused, each replica is pinned to `ceil(cpu)` cores
(the least used ones), and a replica whose resident memory passes its reservation is
killed and restarted by the supervisor, as a container runtime's OOM killer would.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from modelyard.domain.errors import Conflict
from modelyard.domain.webservices import ServiceConfig

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Capacity:
    cpus: int
    memory_bytes: int

    @classmethod
    def of_this_machine(cls) -> Capacity:
        return cls(cpus=len(os.sched_getaffinity(0)), memory_bytes=_mem_total())


def check_fits(config: ServiceConfig, others: list[ServiceConfig], capacity: Capacity) -> None:
    """Refuse a reservation that, at the service's most replicas, exceeds what is free."""
    wanted_cpu, wanted_memory = _reserved(config)
    used_cpu = sum(_reserved(other)[0] for other in others)
    used_memory = sum(_reserved(other)[1] for other in others)
    free_cpu = capacity.cpus - used_cpu
    free_memory = capacity.memory_bytes - used_memory
    if wanted_cpu > free_cpu + 1e-9:
        raise Conflict(
            f"containerResourceReservation.cpu: {wanted_cpu:g} cores for "
            f"{config.most_replicas} replica(s) do not fit; {max(free_cpu, 0):g} of "
            f"{capacity.cpus} cores are free",
            code="InsufficientResources",
        )
    if wanted_memory > free_memory:
        raise Conflict(
            f"containerResourceReservation.memory: {_gib(wanted_memory)} for "
            f"{config.most_replicas} replica(s) do not fit; {_gib(max(free_memory, 0))} of "
            f"{_gib(capacity.memory_bytes)} are free",
            code="InsufficientResources",
        )


class CpuPinner:
    """Hands out cores for replicas, least used first, so reservations spread evenly."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        self._cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self._use: Counter[int] = Counter()
        self._lock = threading.Lock()

    def take(self, cores: float | None) -> set[int] | None:
        if not cores:
            return None
        count = min(len(self._cpus), max(1, math.ceil(cores)))
        with self._lock:
            chosen = sorted(self._cpus, key=lambda cpu: (self._use[cpu], cpu))[:count]
            self._use.update(chosen)
        return set(chosen)

    def give_back(self, cpus: set[int] | None) -> None:
        if cpus:
            with self._lock:
                self._use.subtract(cpus)


def resident_bytes(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE


def _reserved(config: ServiceConfig) -> tuple[float, int]:
    replicas = config.most_replicas
    reservation = config.reservation
    return (reservation.cpu or 0.0) * replicas, (reservation.memory_bytes or 0) * replicas


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"
