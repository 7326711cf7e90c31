"""The realtime web service: an image served by replicas behind one scoring URI.

Rules (seed ServiceCreateRequest / AutoScaler / ContainerResourceReservation):
numReplicas ≥ 0 and not together with an enabled autoscaler; minReplicas ≥ 0,
maxReplicas ≥ 1, refreshPeriodInSeconds ≥ 1, targetUtilization 0 to 100;
maxConcurrentRequestsPerContainer ≥ 1; cpu and memory in Kubernetes notation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from modelyard.domain.errors import Invalid
from modelyard.domain.naming import validate_name

DEFAULT_MAX_CONCURRENT = 32
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(\.\d+)?)([EPTGMk]i?|[eE]\d+)?$")
_MEMORY_UNITS: dict[str | None, int] = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def _at_least(value: int, minimum: int, field_name: str) -> None:
    if not isinstance(value, int) or value < minimum:
        raise Invalid(
            f"{field_name} must be a whole number of at least {minimum}", target=field_name
        )


@dataclass(frozen=True)
class AutoScaler:
    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 10
    refresh_period_s: int = 1
    target_utilization: int = 70

    def __post_init__(self) -> None:
        _at_least(self.min_replicas, 0, "autoScaler.minReplicas")
        _at_least(self.max_replicas, 1, "autoScaler.maxReplicas")
        _at_least(self.refresh_period_s, 1, "autoScaler.refreshPeriodInSeconds")
        if not 0 <= self.target_utilization <= 100:
            raise Invalid(
                "autoScaler.targetUtilization must be between 0 and 100",
                target="autoScaler.targetUtilization",
            )
        if self.min_replicas > self.max_replicas:
            raise Invalid(
                "autoScaler.minReplicas is larger than autoScaler.maxReplicas",
                target="autoScaler.minReplicas",
            )


@dataclass(frozen=True)
class ResourceReservation:
    """What each replica reserves: CPU in cores, memory in bytes (None: not reserved)."""

    cpu: float | None = None
    memory_bytes: int | None = None
    cpu_text: str | None = None
    memory_text: str | None = None

    @classmethod
    def parse(cls, cpu: str | None, memory: str | None) -> ResourceReservation:
        return cls(
            cpu=parse_cpu(cpu) if cpu else None,
            memory_bytes=parse_memory(memory) if memory else None,
            cpu_text=cpu or None,
            memory_text=memory or None,
        )


@dataclass(frozen=True)
class Batching:
    """Adaptive batching for drivers with `run_batch` (a modelyard extension of the seed)."""

    enabled: bool = True
    max_size: int = 32
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        _at_least(self.max_size, 1, "batching.maxBatchSize")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise Invalid(
                "batching.maxWaitMs must be between 0 and 10000", target="batching.maxWaitMs"
            )


@dataclass(frozen=True)
class ServiceConfig:
    """Everything about a service a user sets, after defaults; what an update changes."""

    num_replicas: int | None = 1
    autoscaler: AutoScaler = AutoScaler()
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    reservation: ResourceReservation = ResourceReservation()
    app_insights: bool = False
    storage_enabled: bool = False
    event_hub_enabled: bool = False
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        if self.autoscaler.enabled and self.num_replicas is not None:
            raise Invalid(
                "numReplicas cannot be given when the autoscaler is enabled", target="numReplicas"
            )
        if self.num_replicas is not None:
            _at_least(self.num_replicas, 0, "numReplicas")
        _at_least(self.max_concurrent, 1, "maxConcurrentRequestsPerContainer")
        if self.event_hub_enabled:
            raise Invalid(
                "dataCollection.eventHubEnabled needs an event hub, which modelyard "
                "does not have; use storageEnabled",
                target="dataCollection",
            )

    @property
    def initial_replicas(self) -> int:
        if self.autoscaler.enabled:
            return max(self.autoscaler.min_replicas, 1 if self.autoscaler.max_replicas else 0)
        return self.num_replicas if self.num_replicas is not None else 1

    @property
    def most_replicas(self) -> int:
        return self.autoscaler.max_replicas if self.autoscaler.enabled else self.initial_replicas

    def to_json(self) -> dict[str, Any]:
        a = self.autoscaler
        return {
            "numReplicas": self.num_replicas,
            "autoScaler": {
                "autoscaleEnabled": a.enabled,
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "refreshPeriodInSeconds": a.refresh_period_s,
                "targetUtilization": a.target_utilization,
            },
            "maxConcurrentRequestsPerContainer": self.max_concurrent,
            "containerResourceReservation": {
                "cpu": self.reservation.cpu_text,
                "memory": self.reservation.memory_text,
            },
            "appInsightsEnabled": self.app_insights,
            "dataCollection": {
                "storageEnabled": self.storage_enabled,
                "eventHubEnabled": self.event_hub_enabled,
            },
            "batching": {
                "enabled": self.batching.enabled,
                "maxBatchSize": self.batching.max_size,
                "maxWaitMs": self.batching.max_wait_ms,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceConfig:
        a = data.get("autoScaler") or {}
        r = data.get("containerResourceReservation") or {}
        d = data.get("dataCollection") or {}
        b = data.get("batching") or {}
        return cls(
            num_replicas=data.get("numReplicas"),
            autoscaler=AutoScaler(
                enabled=bool(a.get("autoscaleEnabled", False)),
                min_replicas=a.get("minReplicas", 1),
                max_replicas=a.get("maxReplicas", 10),
                refresh_period_s=a.get("refreshPeriodInSeconds", 1),
                target_utilization=a.get("targetUtilization", 70),
            ),
            max_concurrent=data.get("maxConcurrentRequestsPerContainer", DEFAULT_MAX_CONCURRENT),
            reservation=ResourceReservation.parse(r.get("cpu"), r.get("memory")),
            app_insights=bool(data.get("appInsightsEnabled", False)),
            storage_enabled=bool(d.get("storageEnabled", False)),
            event_hub_enabled=bool(d.get("eventHubEnabled", False)),
            batching=Batching(
                enabled=bool(b.get("enabled", True)),
                max_size=b.get("maxBatchSize", 32),
                max_wait_ms=float(b.get("maxWaitMs", 2.0)),
            ),
        )

    def updated(self, changes: dict[str, Any]) -> ServiceConfig:
        """This config with the fields an update request names replaced (others kept)."""
        scaler_on = bool((changes.get("autoScaler") or {}).get("autoscaleEnabled"))
        if scaler_on and changes.get("numReplicas") is not None:
            raise Invalid(
                "numReplicas cannot be given when the autoscaler is enabled", target="numReplicas"
            )
        merged = self.to_json()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **{k: v for k, v in value.items() if v is not None}}
            else:
                merged[key] = value
        if changes.get("autoScaler", {}).get("autoscaleEnabled") and "numReplicas" not in changes:
            merged["numReplicas"] = None
        if "numReplicas" in changes and changes["numReplicas"] is not None:
            merged["autoScaler"] = {**merged["autoScaler"], "autoscaleEnabled": False}
        return ServiceConfig.from_json(merged)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image_id: str
    config: ServiceConfig = field(default_factory=ServiceConfig)
    compute_resource_id: str | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if not self.image_id:
            raise Invalid("imageId is required", target="imageId")


@dataclass(frozen=True)
class WebService:
    id: str
    account_id: int
    name: str
    image_id: str
    operation_id: str
    port: int
    config: ServiceConfig
    compute_resource_id: str | None
    created_at: datetime
    updated_at: datetime

    def with_changes(self, **changes: Any) -> WebService:
        return replace(self, **changes)


@dataclass(frozen=True)
class Deployment:
    """Which image served a service from when to when, and how that went."""

    id: str
    account_id: int
    service_id: str
    service_name: str
    image_id: str
    created_at: datetime
    expired_at: datetime | None
    status: str


def parse_cpu(text: str) -> float:
    """'0.5', '2' or '500m' cores."""
    match = _CPU.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise Invalid(
            f"cpu '{text}' is not a Kubernetes CPU quantity such as 0.5, 1 or 250m",
            target="containerResourceReservation.cpu",
        )
    value = float(match.group(1))
    return value / 1000 if match.group(3) else value


def parse_memory(text: str) -> int:
    """'512Mi', '1G', '1.5Gi' or plain bytes."""
    match = _MEMORY.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise Invalid(
            f"memory '{text}' is not a Kubernetes memory quantity such as 512Mi or 1G",
            target="containerResourceReservation.memory",
        )
    number, unit = float(match.group(1)), match.group(3)
    if unit and unit[0] in "eE" and unit[1:].isdigit():
        return math.ceil(number * 10.0 ** int(unit[1:]))
    return math.ceil(number * int(_MEMORY_UNITS[unit]))
