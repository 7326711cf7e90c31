"""Model repository: registered model versions and their tags."""

from __future__ import annotations

import builtins

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from modelyard.domain.models import Model
from modelyard.store.paging import Page, page_of
from modelyard.store.tables import (
    ManifestBlobRow,
    ManifestModelRow,
    ModelRow,
    ModelTagRow,
    UploadRow,
)


class ModelRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, model: Model) -> None:
        row = ModelRow(
            id=model.id,
            account_id=model.account_id,
            name=model.name,
            version=model.version,
            url=model.url,
            mime_type=model.mime_type,
            unpack=model.unpack,
            description=model.description,
            tags=list(model.tags),
            sha256=model.sha256,
            size=model.size,
            file_name=model.file_name,
            created_at=model.created_at,
        )
        self._session.add(row)
        self._session.flush()
        self._session.add_all(
            ModelTagRow(model_seq=row.seq, tag=tag) for tag in dict.fromkeys(model.tags)
        )

    def get(self, account_id: int, model_id: str) -> Model | None:
        row = self._session.scalar(
            select(ModelRow).where(ModelRow.account_id == account_id, ModelRow.id == model_id)
        )
        return _to_entity(row) if row is not None else None

    def list(
        self,
        account_id: int,
        *,
        name: str | None = None,
        tag: str | None = None,
        after_seq: int = 0,
        limit: int,
    ) -> Page[Model]:
        query = select(ModelRow).where(ModelRow.account_id == account_id, ModelRow.seq > after_seq)
        if name is not None:
            query = query.where(ModelRow.name == name)
        if tag is not None:
            query = query.where(
                exists().where(ModelTagRow.model_seq == ModelRow.seq, ModelTagRow.tag == tag)
            )
        rows = list(self._session.scalars(query.order_by(ModelRow.seq).limit(limit + 1)))
        return page_of(rows, limit, _to_entity)

    def delete(self, model_id: str) -> None:
        self._session.execute(delete(ModelRow).where(ModelRow.id == model_id))

    def manifests_using(self, model_id: str) -> builtins.list[str]:
        return list(
            self._session.scalars(
                select(ManifestModelRow.manifest_id).where(ManifestModelRow.model_id == model_id)
            )
        )

    def blob_in_use(self, sha256: str) -> bool:
        """Whether any model, upload or manifest still refers to this content."""
        for column in (ModelRow.sha256, UploadRow.sha256, ManifestBlobRow.sha256):
            if self._session.scalar(select(exists().where(column == sha256))):
                return True
        return False


def _to_entity(row: ModelRow) -> Model:
    return Model(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        version=row.version,
        url=row.url,
        mime_type=row.mime_type,
        unpack=row.unpack,
        description=row.description,
        created_at=row.created_at,
        sha256=row.sha256,
        size=row.size,
        tags=tuple(row.tags or ()),
        file_name=row.file_name,
    )
