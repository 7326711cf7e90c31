"""Table definitions. Rows become domain entities in one place per repository.

`seq` columns are the keyset for paging: monotonically assigned on insert, so
"everything after seq N" is stable while new rows arrive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no 64-bit autoincrement through BigInteger; use INTEGER there.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UtcDateTime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("subscription_id", "resource_group", "name"),)

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(90))
    resource_group: Mapped[str] = mapped_column(String(90))
    name: Mapped[str] = mapped_column(String(90))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class VersionCounterRow(Base):
    """Last version handed out per (account, kind, name): versions are never reused."""

    __tablename__ = "version_counters"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("account_id", "name", "version"),
        Index("ix_models_account_seq", "account_id", "seq"),
        Index("ix_models_account_name_seq", "account_id", "name", "seq"),
        Index("ix_models_sha256", "sha256"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(255))
    unpack: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ModelTagRow(Base):
    """One row per (model, tag) so the `tag` filter is an indexed lookup."""

    __tablename__ = "model_tags"
    __table_args__ = (Index("ix_model_tags_tag", "tag", "model_seq"),)

    model_seq: Mapped[int] = mapped_column(
        ForeignKey("models.seq", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ManifestRow(Base):
    __tablename__ = "manifests"
    __table_args__ = (
        UniqueConstraint("account_id", "name", "version"),
        Index("ix_manifests_account_seq", "account_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    driver_program: Mapped[str] = mapped_column(String(255))
    assets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    target_runtime: Mapped[dict[str, Any]] = mapped_column(JSON)
    webservice_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ManifestModelRow(Base):
    """Which models a manifest packages; RESTRICT keeps a used model from vanishing."""

    __tablename__ = "manifest_models"
    __table_args__ = (Index("ix_manifest_models_model", "model_id"),)

    manifest_id: Mapped[str] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[int] = mapped_column(Integer)
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class UploadRow(Base):
    """A file streamed to the server, to be referenced as `upload://<id>` in a url."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ManifestBlobRow(Base):
    """Every blob a manifest refers to (assets, requirement files), for reference checks."""

    __tablename__ = "manifest_blobs"
    __table_args__ = (Index("ix_manifest_blobs_sha256", "sha256"),)

    manifest_id: Mapped[str] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))


class OperationRow(Base):
    """Durable async work. A worker holds it through a lease it renews by heartbeat."""

    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_claim", "state", "seq"),
        Index("ix_operations_resource", "resource_id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(36))
    resource_type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[str] = mapped_column(String(255))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    # What the work needs beyond the resource (e.g. a service update's new image/config).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ImageRow(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("account_id", "name", "version"),
        Index("ix_images_account_seq", "account_id", "seq"),
        Index("ix_images_manifest", "manifest_id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    image_type: Mapped[str] = mapped_column(String(16))
    manifest_id: Mapped[str] = mapped_column(ForeignKey("manifests.id", ondelete="RESTRICT"))
    compute_resource_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    operation_id: Mapped[str] = mapped_column(String(36))
    registry_location: Mapped[str | None] = mapped_column(Text, nullable=True)
    registry_user: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Write-only: used to push when a container engine exists; never serialised.
    registry_password: Mapped[str | None] = mapped_column(Text, nullable=True)
    image_location: Mapped[str | None] = mapped_column(Text, nullable=True)
    environment_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ServiceRow(Base):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        Index("ix_services_account_seq", "account_id", "seq"),
        Index("ix_services_image", "image_id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"))
    operation_id: Mapped[str] = mapped_column(String(36))
    port: Mapped[int] = mapped_column(Integer, unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Returned by GET .../keys (that is their purpose); never in any other response.
    primary_key: Mapped[str] = mapped_column(String(128))
    secondary_key: Mapped[str] = mapped_column(String(128))
    compute_resource_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_account_seq", "account_id", "seq"),
        Index("ix_deployments_service", "service_id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    service_id: Mapped[str] = mapped_column(String(36))
    service_name: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
