"""Unit of work: one transaction, with the repositories bound to it.

Use as `with UnitOfWork(db, write=True) as uow: ...; uow.commit()`. Leaving the block
without `commit()` rolls back, so a use case that raises half-way writes nothing.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import IntegrityError

from modelyard.domain.errors import Conflict
from modelyard.store.accounts import AccountRepository
from modelyard.store.counters import VersionCounters
from modelyard.store.database import Database
from modelyard.store.images import ImageRepository
from modelyard.store.manifests import ManifestRepository
from modelyard.store.models import ModelRepository
from modelyard.store.operations import OperationRepository
from modelyard.store.tokens import TokenRepository
from modelyard.store.uploads import UploadRepository
from modelyard.store.webservices import DeploymentRepository, ServiceRepository


class UnitOfWork:
    def __init__(self, db: Database, *, write: bool) -> None:
        self._db = db
        self._write = write

    def __enter__(self) -> UnitOfWork:
        self._lock = self._db.write_lock if self._write else None
        if self._lock is not None:
            self._lock.acquire()
        self.session = self._db.session(write=self._write)
        self.accounts = AccountRepository(self.session)
        self.counters = VersionCounters(self.session)
        self.models = ModelRepository(self.session)
        self.manifests = ManifestRepository(self.session)
        self.images = ImageRepository(self.session)
        self.operations = OperationRepository(self.session)
        self.services = ServiceRepository(self.session)
        self.deployments = DeploymentRepository(self.session)
        self.uploads = UploadRepository(self.session)
        self.tokens = TokenRepository(self.session)
        return self

    def commit(self) -> None:
        try:
            self.session.commit()
        except IntegrityError as exc:
            self.session.rollback()
            raise Conflict("the change clashes with a concurrent one; retry it") from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
            self.session.close()
        finally:
            if self._lock is not None:
                self._lock.release()
