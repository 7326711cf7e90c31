"""What every use case needs, built once by `create_app` and passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelyard.artifacts import BlobStore, FetchPolicy, UnpackLimits
from modelyard.builder.environments import EnvironmentBuilder
from modelyard.compute.base import ComputeTarget
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import NotFound
from modelyard.services.tokens import TokenCache
from modelyard.store.database import Database
from modelyard.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ServiceContext:
    db: Database
    blobs: BlobStore
    fetch_policy: FetchPolicy
    unpack_limits: UnpackLimits
    max_artifact_bytes: int
    environments: EnvironmentBuilder
    home: Path
    strict_accounts: bool = False
    token_cache: TokenCache = field(default_factory=TokenCache)
    # Realtime services run only where the server runs: `modelyard worker` has none.
    compute: ComputeTarget | None = None
    service_host: str = "127.0.0.1"
    service_ports: tuple[int, int] = (5100, 5999)
    deploy_timeout_s: float = 300.0

    @property
    def images_root(self) -> Path:
        return self.home / "images"

    @property
    def services_root(self) -> Path:
        return self.home / "services"

    def read(self) -> UnitOfWork:
        return UnitOfWork(self.db, write=False)

    def write(self) -> UnitOfWork:
        return UnitOfWork(self.db, write=True)


def existing_account(uow: UnitOfWork, account: AccountRef) -> int:
    """The id of an account that must already exist (reads never create one)."""
    account_id = uow.accounts.find(account)
    if account_id is None:
        raise NotFound(
            f"account {account.scope_key} does not exist; it is created by its first write",
            code="AccountNotFound",
        )
    return account_id


def account_for_write(ctx: ServiceContext, uow: UnitOfWork, account: AccountRef) -> int:
    """Accounts are created on first write, unless the server runs with strict accounts."""
    if ctx.strict_accounts:
        return existing_account(uow, account)
    return uow.accounts.ensure(account)
