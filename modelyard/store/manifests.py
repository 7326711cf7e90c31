"""Manifest repository: manifests, the models they package and the blobs they use."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from modelyard.domain.manifests import Manifest, StoredAsset
from modelyard.store.paging import Page, page_of
from modelyard.store.tables import ManifestBlobRow, ManifestModelRow, ManifestRow


class ManifestRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, manifest: Manifest) -> None:
        self._session.add(
            ManifestRow(
                id=manifest.id,
                account_id=manifest.account_id,
                name=manifest.name,
                version=manifest.version,
                description=manifest.description,
                driver_program=manifest.driver_program,
                assets=[_asset_json(a) for a in manifest.assets],
                target_runtime={
                    "runtimeType": manifest.runtime_type,
                    "properties": dict(manifest.runtime_properties),
                    "blobs": dict(manifest.runtime_blobs),
                },
                webservice_type=manifest.webservice_type,
                created_at=manifest.created_at,
            )
        )
        self._session.flush()
        self._session.add_all(
            ManifestModelRow(manifest_id=manifest.id, model_id=model_id, position=i)
            for i, model_id in enumerate(manifest.model_ids)
        )
        blobs = {f"asset:{a.id}": a.sha256 for a in manifest.assets}
        blobs.update({f"runtime:{k}": v for k, v in manifest.runtime_blobs.items()})
        self._session.add_all(
            ManifestBlobRow(manifest_id=manifest.id, role=role, sha256=sha)
            for role, sha in blobs.items()
        )

    def get(self, account_id: int, manifest_id: str) -> Manifest | None:
        row = self._session.scalar(
            select(ManifestRow).where(
                ManifestRow.account_id == account_id, ManifestRow.id == manifest_id
            )
        )
        return self._to_entity(row) if row is not None else None

    def list(
        self,
        account_id: int,
        *,
        model_id: str | None = None,
        name: str | None = None,
        after_seq: int = 0,
        limit: int,
    ) -> Page[Manifest]:
        query = select(ManifestRow).where(
            ManifestRow.account_id == account_id, ManifestRow.seq > after_seq
        )
        if name is not None:
            query = query.where(ManifestRow.name == name)
        if model_id is not None:
            query = query.where(
                exists().where(
                    ManifestModelRow.manifest_id == ManifestRow.id,
                    ManifestModelRow.model_id == model_id,
                )
            )
        rows = builtins.list(
            self._session.scalars(query.order_by(ManifestRow.seq).limit(limit + 1))
        )
        return page_of(rows, limit, self._to_entity)

    def blob_in_use(self, sha256: str) -> bool:
        return bool(self._session.scalar(select(exists().where(ManifestBlobRow.sha256 == sha256))))

    def _to_entity(self, row: ManifestRow) -> Manifest:
        model_ids = self._session.scalars(
            select(ManifestModelRow.model_id)
            .where(ManifestModelRow.manifest_id == row.id)
            .order_by(ManifestModelRow.position)
        )
        runtime = row.target_runtime
        return Manifest(
            id=row.id,
            account_id=row.account_id,
            name=row.name,
            version=row.version,
            description=row.description,
            driver_program=row.driver_program,
            assets=tuple(_asset_from(a) for a in row.assets),
            model_ids=tuple(model_ids),
            runtime_type=runtime.get("runtimeType", ""),
            runtime_properties=dict(runtime.get("properties", {})),
            runtime_blobs=dict(runtime.get("blobs", {})),
            webservice_type=row.webservice_type,
            created_at=row.created_at,
        )


def _asset_json(asset: StoredAsset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "url": asset.url,
        "mimeType": asset.mime_type,
        "unpack": asset.unpack,
        "sha256": asset.sha256,
        "size": asset.size,
        "fileName": asset.file_name,
    }


def _asset_from(data: dict[str, Any]) -> StoredAsset:
    return StoredAsset(
        id=data["id"],
        url=data["url"],
        mime_type=data["mimeType"],
        unpack=bool(data["unpack"]),
        sha256=data["sha256"],
        size=int(data["size"]),
        file_name=data.get("fileName", ""),
    )
