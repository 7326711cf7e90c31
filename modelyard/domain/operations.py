"""Durable async operations and their state machine.

    NotStarted ──claim──▶ Running ──▶ Succeeded | Failed | Cancelled
        │                   │
        └──cancel──▶ Cancelled   └──lease expired──▶ NotStarted (retry) or Failed

A Running operation belongs to the worker holding its lease. A worker that dies
stops renewing it; once it expires the next worker takes the operation up again
from a clean state, until `max_attempts` is spent, after which it ends Failed with
an error saying so. Nothing stays Running forever.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class OperationState(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)


class OperationKind(enum.StrEnum):
    """The seed's operationType; the kind also picks the handler that runs it."""

    IMAGE = "Image"
    SERVICE = "Service"


@dataclass(frozen=True)
class OperationError:
    """Stored with a failed operation; rendered as the MMS ErrorResponse."""

    code: str
    message: str
    status_code: int
    details: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "statusCode": self.status_code,
            "details": [{"code": c, "message": m} for c, m in self.details],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OperationError:
        return cls(
            code=data["code"],
            message=data["message"],
            status_code=int(data["statusCode"]),
            details=tuple((d["code"], d["message"]) for d in data.get("details", [])),
        )


@dataclass(frozen=True)
class Operation:
    id: str
    account_id: int
    kind: OperationKind
    resource_type: str
    resource_id: str
    state: OperationState
    created_at: datetime
    attempts: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    progress: str = ""
    error: OperationError | None = None
    started_at: datetime | None = None
    end_time: datetime | None = None
    payload: dict[str, Any] | None = None
    lease_owner: str | None = field(default=None, compare=False)
