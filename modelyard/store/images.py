"""Image repository."""

from __future__ import annotations

import builtins

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelyard.domain.images import Image, RegistryInfo
from modelyard.store.paging import Page, page_of
from modelyard.store.tables import ImageRow, ManifestRow


class ImageRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, image: Image, registry: RegistryInfo) -> None:
        self._session.add(
            ImageRow(
                id=image.id,
                account_id=image.account_id,
                name=image.name,
                version=image.version,
                description=image.description,
                image_type=image.image_type,
                manifest_id=image.manifest_id,
                compute_resource_id=image.compute_resource_id,
                operation_id=image.operation_id,
                registry_location=registry.location,
                registry_user=registry.user,
                registry_password=registry.password,
                image_location=None,
                environment_sha256=None,
                created_at=image.created_at,
            )
        )

    def get(self, account_id: int, image_id: str) -> Image | None:
        row = self._session.scalar(
            select(ImageRow).where(ImageRow.account_id == account_id, ImageRow.id == image_id)
        )
        return _to_entity(row) if row is not None else None

    def by_id(self, image_id: str) -> Image | None:
        row = self._session.scalar(select(ImageRow).where(ImageRow.id == image_id))
        return _to_entity(row) if row is not None else None

    def registry_secret(self, image_id: str) -> RegistryInfo:
        row = self._session.scalar(select(ImageRow).where(ImageRow.id == image_id))
        if row is None:
            return RegistryInfo()
        return RegistryInfo(row.registry_location, row.registry_user, row.registry_password)

    def record_build(self, image_id: str, *, location: str, environment_sha256: str) -> None:
        self._session.execute(
            update(ImageRow)
            .where(ImageRow.id == image_id)
            .values(image_location=location, environment_sha256=environment_sha256)
        )

    def list(
        self,
        account_id: int,
        *,
        manifest_id: str | None = None,
        manifest_name: str | None = None,
        after_seq: int = 0,
        limit: int,
    ) -> Page[Image]:
        query = select(ImageRow).where(ImageRow.account_id == account_id, ImageRow.seq > after_seq)
        if manifest_id is not None:
            query = query.where(ImageRow.manifest_id == manifest_id)
        if manifest_name is not None:
            query = query.join(ManifestRow, ManifestRow.id == ImageRow.manifest_id).where(
                ManifestRow.name == manifest_name
            )
        rows = builtins.list(self._session.scalars(query.order_by(ImageRow.seq).limit(limit + 1)))
        return page_of(rows, limit, _to_entity)

    def manifest_in_use(self, manifest_id: str) -> bool:
        found = self._session.scalar(
            select(ImageRow.id).where(ImageRow.manifest_id == manifest_id).limit(1)
        )
        return found is not None


def _to_entity(row: ImageRow) -> Image:
    return Image(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        version=row.version,
        description=row.description,
        image_type=row.image_type,
        manifest_id=row.manifest_id,
        compute_resource_id=row.compute_resource_id,
        operation_id=row.operation_id,
        registry_location=row.registry_location,
        image_location=row.image_location,
        environment_sha256=row.environment_sha256,
        created_at=row.created_at,
    )
