"""Worker threads that claim operations, run their handler, and keep the lease alive.

The server runs a few of these embedded; `modelyard worker` runs more in another
process against the same database and data dir. Each claimed operation gets a
heartbeat thread that renews the lease and turns a cancel request (or a lost lease)
into the `Job.cancelled` flag, which handlers poll and pass to their subprocesses.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from modelyard.domain.errors import ModelyardError, OperationCancelled
from modelyard.domain.operations import (
    Operation,
    OperationError,
    OperationKind,
    OperationState,
)
from modelyard.store.database import Database
from modelyard.store.unit_of_work import UnitOfWork

_log = structlog.get_logger("modelyard.worker")


@dataclass
class Job:
    """What a handler gets besides the operation: a cancel flag and a progress setter."""

    operation: Operation
    cancelled: threading.Event
    report: Callable[[str], None]

    def is_set(self) -> bool:
        """A `CancelToken`, so a job can be handed to subprocess runners directly."""
        return self.cancelled.is_set()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise OperationCancelled("the operation was cancelled")


Handler = Callable[[Job], None]


@dataclass
class WorkerPool:
    db: Database
    handlers: Mapping[OperationKind, Handler]
    concurrency: int = 2
    lease: timedelta = timedelta(seconds=15)
    poll_interval_s: float = 0.5
    # The HTTP status a failure is reported with (the API family's mapping).
    status_for: Callable[[ModelyardError], int] = lambda exc: 500
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def start(self) -> None:
        self._reclaim_dead_local_workers()
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._loop,
                args=(f"{self.identity}:{index}",),
                daemon=True,
                name=f"modelyard-worker-{index}",
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """New work was queued: skip the rest of the poll interval."""
        self._wake.set()

    def stop(self, timeout_s: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def run_once(self, worker_id: str | None = None) -> bool:
        """Claim and run one operation; False when there was none. Used by tests."""
        worker_id = worker_id or f"{self.identity}:once"
        with UnitOfWork(self.db, write=True) as uow:
            operation = uow.operations.claim(worker_id, self.lease, tuple(self.handlers))
            uow.commit()
        if operation is None:
            return False
        self._run(operation, worker_id)
        return True

    def _loop(self, worker_id: str) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once(worker_id)
            except Exception:
                _log.exception("worker loop failed; retrying", worker=worker_id)
                worked = False
            if not worked:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()

    def _run(self, operation: Operation, worker_id: str) -> None:
        cancelled = threading.Event()
        done = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(operation.id, worker_id, cancelled, done), daemon=True
        )
        beat.start()

        def report(progress: str) -> None:
            with UnitOfWork(self.db, write=True) as uow:
                uow.operations.set_progress(operation.id, worker_id, progress)
                uow.commit()

        job = Job(operation, cancelled, report)
        state, error = OperationState.SUCCEEDED, None
        _log.info(
            "operation started",
            id=operation.id,
            kind=operation.kind.value,
            attempt=operation.attempts,
        )
        try:
            self.handlers[operation.kind](job)
        except OperationCancelled:
            state = OperationState.CANCELLED
        except ModelyardError as exc:
            state = OperationState.FAILED
            error = OperationError(
                exc.code, exc.message, self.status_for(exc), ((exc.code, exc.message),)
            )
        except Exception as exc:
            _log.exception("operation crashed", id=operation.id)
            state = OperationState.FAILED
            message = f"internal error: {type(exc).__name__}: {exc}"
            error = OperationError("InternalError", message, 500, (("InternalError", message),))
        finally:
            done.set()
            beat.join()
        if cancelled.is_set() and state is OperationState.SUCCEEDED:
            state = OperationState.CANCELLED
        with UnitOfWork(self.db, write=True) as uow:
            finished = uow.operations.finish(operation.id, worker_id, state, error)
            uow.commit()
        _log.info("operation ended", id=operation.id, state=state.value, recorded=finished)

    def _heartbeat(
        self, operation_id: str, worker_id: str, cancelled: threading.Event, done: threading.Event
    ) -> None:
        interval = self.lease.total_seconds() / 5
        while not done.wait(min(interval, 1.0)):
            try:
                with UnitOfWork(self.db, write=True) as uow:
                    wants_cancel = uow.operations.heartbeat(operation_id, worker_id, self.lease)
                    uow.commit()
            except Exception:
                _log.exception("heartbeat failed", id=operation_id)
                continue
            if wants_cancel is None or wants_cancel:
                cancelled.set()

    def _reclaim_dead_local_workers(self) -> None:
        """Leases held by dead processes on this host are released at once, not at expiry."""
        host = socket.gethostname()
        with UnitOfWork(self.db, write=True) as uow:
            dead = [
                owner for owner in uow.operations.running_owners() if _is_dead_local(owner, host)
            ]
            if dead:
                uow.operations.expire_leases_of(dead)
                uow.commit()
                _log.info("released leases of dead workers", owners=dead)


def _is_dead_local(owner: str, host: str) -> bool:
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class WorkerPools:
    """Several pools started, woken and stopped together (one per kind of work)."""

    def __init__(self, pools: list[WorkerPool]) -> None:
        self.pools = pools

    def start(self) -> None:
        for pool in self.pools:
            if pool.concurrency:
                pool.start()

    def wake(self) -> None:
        for pool in self.pools:
            pool.wake()

    def stop(self) -> None:
        for pool in self.pools:
            pool.stop()
