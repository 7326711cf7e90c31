"""Web service and deployment repositories."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from modelyard.domain.webservices import Deployment, ServiceConfig, WebService
from modelyard.store.paging import Page, page_of
from modelyard.store.tables import (
    DeploymentRow,
    ImageRow,
    ManifestModelRow,
    ManifestRow,
    ModelRow,
    ServiceRow,
)


class ServiceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, service: WebService, keys: tuple[str, str]) -> None:
        self._session.add(
            ServiceRow(
                id=service.id,
                account_id=service.account_id,
                name=service.name,
                image_id=service.image_id,
                operation_id=service.operation_id,
                port=service.port,
                config=service.config.to_json(),
                primary_key=keys[0],
                secondary_key=keys[1],
                compute_resource_id=service.compute_resource_id,
                created_at=service.created_at,
                updated_at=service.updated_at,
            )
        )

    def get(self, account_id: int, service_id: str) -> WebService | None:
        row = self._session.scalar(
            select(ServiceRow).where(
                ServiceRow.account_id == account_id, ServiceRow.id == service_id
            )
        )
        return _to_entity(row) if row is not None else None

    def by_id(self, service_id: str) -> WebService | None:
        row = self._session.scalar(select(ServiceRow).where(ServiceRow.id == service_id))
        return _to_entity(row) if row is not None else None

    def by_name(self, account_id: int, name: str) -> WebService | None:
        row = self._session.scalar(
            select(ServiceRow).where(ServiceRow.account_id == account_id, ServiceRow.name == name)
        )
        return _to_entity(row) if row is not None else None

    def all(self) -> builtins.list[WebService]:
        return [_to_entity(row) for row in self._session.scalars(select(ServiceRow))]

    def used_ports(self) -> set[int]:
        return set(self._session.scalars(select(ServiceRow.port)))

    def keys(self, service_id: str) -> tuple[str, str]:
        row = self._session.scalar(select(ServiceRow).where(ServiceRow.id == service_id))
        assert row is not None
        return row.primary_key, row.secondary_key

    def set_key(self, service_id: str, which: str, value: str) -> None:
        column = "primary_key" if which == "Primary" else "secondary_key"
        self._session.execute(
            update(ServiceRow).where(ServiceRow.id == service_id).values({column: value})
        )

    def save(self, service: WebService) -> None:
        self._session.execute(
            update(ServiceRow)
            .where(ServiceRow.id == service.id)
            .values(
                image_id=service.image_id,
                operation_id=service.operation_id,
                config=service.config.to_json(),
                updated_at=service.updated_at,
            )
        )

    def delete(self, service_id: str) -> None:
        self._session.execute(delete(ServiceRow).where(ServiceRow.id == service_id))

    def list(
        self,
        account_id: int,
        *,
        name: str | None = None,
        image_id: str | None = None,
        model_id: str | None = None,
        model_name: str | None = None,
        manifest_id: str | None = None,
        manifest_name: str | None = None,
        compute_resource_id: str | None = None,
        after_seq: int = 0,
        limit: int,
    ) -> Page[WebService]:
        query = select(ServiceRow).where(
            ServiceRow.account_id == account_id, ServiceRow.seq > after_seq
        )
        if name is not None:
            query = query.where(ServiceRow.name == name)
        if image_id is not None:
            query = query.where(ServiceRow.image_id == image_id)
        if compute_resource_id is not None:
            query = query.where(ServiceRow.compute_resource_id == compute_resource_id)
        if manifest_id is not None or manifest_name is not None:
            manifests = select(ImageRow.manifest_id).where(ImageRow.id == ServiceRow.image_id)
            if manifest_id is not None:
                query = query.where(manifests.scalar_subquery() == manifest_id)
            if manifest_name is not None:
                query = query.where(
                    exists().where(
                        ImageRow.id == ServiceRow.image_id,
                        ManifestRow.id == ImageRow.manifest_id,
                        ManifestRow.name == manifest_name,
                    )
                )
        if model_id is not None or model_name is not None:
            conditions = [
                ImageRow.id == ServiceRow.image_id,
                ManifestModelRow.manifest_id == ImageRow.manifest_id,
            ]
            if model_id is not None:
                conditions.append(ManifestModelRow.model_id == model_id)
            if model_name is not None:
                conditions += [
                    ModelRow.id == ManifestModelRow.model_id,
                    ModelRow.name == model_name,
                ]
            query = query.where(exists().where(*conditions))
        rows = builtins.list(self._session.scalars(query.order_by(ServiceRow.seq).limit(limit + 1)))
        return page_of(rows, limit, _to_entity)

    def image_in_use(self, image_id: str) -> bool:
        return bool(self._session.scalar(select(exists().where(ServiceRow.image_id == image_id))))


class DeploymentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, deployment: Deployment) -> None:
        self._session.add(
            DeploymentRow(
                id=deployment.id,
                account_id=deployment.account_id,
                service_id=deployment.service_id,
                service_name=deployment.service_name,
                image_id=deployment.image_id,
                created_at=deployment.created_at,
                expired_at=deployment.expired_at,
                status=deployment.status,
            )
        )

    def expire_current(self, service_id: str, when: datetime) -> None:
        self._session.execute(
            update(DeploymentRow)
            .where(DeploymentRow.service_id == service_id, DeploymentRow.expired_at.is_(None))
            .values(expired_at=when)
        )

    def current(self, service_id: str) -> Deployment | None:
        """The deployment serving now: succeeded and not yet replaced."""
        row = self._session.scalar(
            select(DeploymentRow)
            .where(
                DeploymentRow.service_id == service_id,
                DeploymentRow.expired_at.is_(None),
                DeploymentRow.status == "Succeeded",
            )
            .order_by(DeploymentRow.seq.desc())
            .limit(1)
        )
        return _deployment(row) if row is not None else None

    def get(self, account_id: int, deployment_id: str) -> Deployment | None:
        row = self._session.scalar(
            select(DeploymentRow).where(
                DeploymentRow.account_id == account_id, DeploymentRow.id == deployment_id
            )
        )
        return _deployment(row) if row is not None else None

    def list(
        self, account_id: int, *, service_id: str | None, after_seq: int, limit: int
    ) -> Page[Deployment]:
        query = select(DeploymentRow).where(
            DeploymentRow.account_id == account_id, DeploymentRow.seq > after_seq
        )
        if service_id is not None:
            query = query.where(DeploymentRow.service_id == service_id)
        rows = builtins.list(
            self._session.scalars(query.order_by(DeploymentRow.seq).limit(limit + 1))
        )
        return page_of(rows, limit, _deployment)


def _to_entity(row: ServiceRow) -> WebService:
    return WebService(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        image_id=row.image_id,
        operation_id=row.operation_id,
        port=row.port,
        config=ServiceConfig.from_json(row.config),
        compute_resource_id=row.compute_resource_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _deployment(row: DeploymentRow) -> Deployment:
    return Deployment(
        id=row.id,
        account_id=row.account_id,
        service_id=row.service_id,
        service_name=row.service_name,
        image_id=row.image_id,
        created_at=row.created_at,
        expired_at=row.expired_at,
        status=row.status,
    )
