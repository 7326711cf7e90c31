"""Operation repository: the queue that workers claim from, with leases.

Claiming uses `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers
never take the same row; on SQLite the single writer (BEGIN IMMEDIATE) serialises
claims, which gives the same guarantee. Every state change after a claim is made
only by the lease holder (`WHERE lease_owner = :me`), so a worker that lost its
lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from modelyard.domain.operations import (
    Operation,
    OperationError,
    OperationKind,
    OperationState,
)
from modelyard.store.tables import OperationRow, utcnow

_NOT_STARTED = OperationState.NOT_STARTED.value
_RUNNING = OperationState.RUNNING.value


class OperationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, operation: Operation) -> None:
        self._session.add(
            OperationRow(
                id=operation.id,
                account_id=operation.account_id,
                kind=operation.kind.value,
                resource_id=operation.resource_id,
                resource_type=operation.resource_type,
                state=operation.state.value,
                progress=operation.progress,
                error=operation.error.to_json() if operation.error else None,
                attempts=operation.attempts,
                max_attempts=operation.max_attempts,
                cancel_requested=operation.cancel_requested,
                payload=operation.payload,
                lease_owner=None,
                lease_expires_at=None,
                created_at=operation.created_at,
                started_at=None,
                end_time=None,
            )
        )

    def get(self, account_id: int, operation_id: str) -> Operation | None:
        row = self._session.scalar(
            select(OperationRow).where(
                OperationRow.account_id == account_id, OperationRow.id == operation_id
            )
        )
        return _to_entity(row) if row is not None else None

    def by_id(self, operation_id: str) -> Operation | None:
        row = self._session.scalar(select(OperationRow).where(OperationRow.id == operation_id))
        return _to_entity(row) if row is not None else None

    def claim(
        self, worker_id: str, lease: timedelta, kinds: tuple[OperationKind, ...]
    ) -> Operation | None:
        """Take the oldest runnable operation: new, or Running with an expired lease.

        An expired one whose attempts are spent, or that was asked to cancel, is
        closed here instead of run again.
        """
        now = utcnow()
        while True:
            query = (
                select(OperationRow)
                .where(
                    OperationRow.kind.in_([k.value for k in kinds]),
                    or_(
                        OperationRow.state == _NOT_STARTED,
                        and_(OperationRow.state == _RUNNING, OperationRow.lease_expires_at < now),
                    ),
                )
                .order_by(OperationRow.seq)
                .limit(1)
            )
            if self._session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = self._session.scalar(query)
            if row is None:
                return None
            if row.state == _RUNNING and row.cancel_requested:
                _close(row, OperationState.CANCELLED, None, now)
                continue
            if row.state == _RUNNING and row.attempts >= row.max_attempts:
                error = OperationError(
                    "WorkerLost",
                    f"the worker running this operation stopped {row.attempts} times "
                    "(killed or crashed); giving up",
                    500,
                )
                _close(row, OperationState.FAILED, error, now)
                continue
            row.state = _RUNNING
            row.attempts += 1
            row.lease_owner = worker_id
            row.lease_expires_at = now + lease
            row.started_at = row.started_at or now
            row.progress = "started" if row.attempts == 1 else f"restarted (attempt {row.attempts})"
            self._session.flush()
            return _to_entity(row)

    def heartbeat(self, operation_id: str, worker_id: str, lease: timedelta) -> bool | None:
        """Renew the lease; returns whether cancel was requested, or None if it was lost."""
        result = self._session.execute(
            update(OperationRow)
            .where(
                OperationRow.id == operation_id,
                OperationRow.lease_owner == worker_id,
                OperationRow.state == _RUNNING,
            )
            .values(lease_expires_at=utcnow() + lease)
            .returning(OperationRow.cancel_requested)
        ).first()
        return None if result is None else bool(result[0])

    def set_progress(self, operation_id: str, worker_id: str, progress: str) -> None:
        self._session.execute(
            update(OperationRow)
            .where(OperationRow.id == operation_id, OperationRow.lease_owner == worker_id)
            .values(progress=progress[:255])
        )

    def finish(
        self,
        operation_id: str,
        worker_id: str,
        state: OperationState,
        error: OperationError | None = None,
    ) -> bool:
        row = self._session.scalar(
            select(OperationRow).where(
                OperationRow.id == operation_id,
                OperationRow.lease_owner == worker_id,
                OperationRow.state == _RUNNING,
            )
        )
        if row is None:
            return False
        _close(row, state, error, utcnow())
        return True

    def running_for_resource(self, resource_id: str) -> list[Operation]:
        rows = self._session.scalars(
            select(OperationRow).where(
                OperationRow.resource_id == resource_id,
                OperationRow.state.in_([_NOT_STARTED, _RUNNING]),
            )
        )
        return [_to_entity(row) for row in rows]

    def request_cancel(self, operation_id: str) -> None:
        row = self._session.scalar(select(OperationRow).where(OperationRow.id == operation_id))
        if row is None or OperationState(row.state).terminal:
            return
        if row.state == _NOT_STARTED:
            _close(row, OperationState.CANCELLED, None, utcnow())
        else:
            row.cancel_requested = True

    def expire_leases_of(self, owners: list[str]) -> int:
        """Make the leases of known-dead workers claimable now instead of at expiry."""
        if not owners:
            return 0
        result = self._session.execute(
            update(OperationRow)
            .where(OperationRow.state == _RUNNING, OperationRow.lease_owner.in_(owners))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def running_owners(self) -> list[str]:
        rows = self._session.scalars(
            select(OperationRow.lease_owner)
            .where(OperationRow.state == _RUNNING, OperationRow.lease_owner.is_not(None))
            .distinct()
        )
        return [owner for owner in rows if owner]


def _close(
    row: OperationRow, state: OperationState, error: OperationError | None, now: datetime
) -> None:
    row.state = state.value
    row.error = error.to_json() if error else None
    row.end_time = now
    row.lease_owner = None
    row.lease_expires_at = None
    row.progress = state.value.lower()


def _to_entity(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        account_id=row.account_id,
        kind=OperationKind(row.kind),
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        state=OperationState(row.state),
        created_at=row.created_at,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        progress=row.progress,
        error=OperationError.from_json(row.error) if row.error else None,
        started_at=row.started_at,
        end_time=row.end_time,
        payload=row.payload,
        lease_owner=row.lease_owner,
    )
