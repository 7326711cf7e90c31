"""Realtime web service use cases: create, update, delete, show, list, keys.

Create and update answer at once with an operation; a service worker in the server
rolls the replicas (see `webservice_deploy.py`). Until that succeeds the service row
keeps the version that is actually serving: the requested image and settings travel
in the operation's payload and are saved only when the new replicas are ready.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from modelyard.compute.base import ComputeTarget
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Conflict, Invalid, NotFound
from modelyard.domain.images import ImageSpec
from modelyard.domain.models import Model
from modelyard.domain.operations import Operation, OperationKind, OperationState
from modelyard.domain.webservices import ServiceSpec, WebService
from modelyard.services.context import ServiceContext, account_for_write, existing_account
from modelyard.services.images import ImageView, create_image, image_view
from modelyard.store.paging import Page, decode_token
from modelyard.store.tables import utcnow
from modelyard.store.unit_of_work import UnitOfWork

KEY_TYPES = ("Primary", "Secondary")


@dataclass(frozen=True)
class ServiceView:
    """A service with what its responses embed."""

    service: WebService
    image: ImageView
    models: list[Model]
    operation: Operation


def new_key() -> str:
    return secrets.token_urlsafe(32)


def key_hashes(keys: tuple[str, str]) -> tuple[str, ...]:
    return tuple(hashlib.sha256(key.encode()).hexdigest() for key in keys)


def create_service(ctx: ServiceContext, account: AccountRef, spec: ServiceSpec) -> ServiceView:
    compute = _compute(ctx)
    with ctx.write() as uow:
        account_id = account_for_write(ctx, uow, account)
        _built_image(uow, account_id, spec.image_id, account)
        if uow.services.by_name(account_id, spec.name) is not None:
            raise Conflict(
                f"a service named '{spec.name}' already exists in account {account.scope_key}",
                code="ServiceExists",
            )
        compute.check_fits(spec.config, [s.config for s in uow.services.all()])
        now = utcnow()
        service_id = str(uuid.uuid4())
        operation = _operation(
            account_id, service_id, {"imageId": spec.image_id, "config": spec.config.to_json()}
        )
        service = WebService(
            id=service_id,
            account_id=account_id,
            name=spec.name,
            image_id=spec.image_id,
            operation_id=operation.id,
            port=_free_port(ctx, uow.services.used_ports()),
            config=spec.config,
            compute_resource_id=spec.compute_resource_id,
            created_at=now,
            updated_at=now,
        )
        uow.services.add(service, (new_key(), new_key()))
        uow.operations.add(operation)
        uow.commit()
    return get_service(ctx, account, service_id)


def update_service(
    ctx: ServiceContext,
    account: AccountRef,
    service_id: str,
    changes: dict[str, Any],
    *,
    image_id: str | None = None,
    manifest_id: str | None = None,
) -> ServiceView:
    """Queue a rolling update to a new image and/or settings (fields not named are kept).

    `manifest_id` (the 2017 form) first builds an image from that manifest; the update
    waits for it.
    """
    compute = _compute(ctx)
    current = get_service(ctx, account, service_id).service
    config = current.config.updated(changes)
    payload: dict[str, Any] = {"imageId": image_id or current.image_id, "config": config.to_json()}
    if manifest_id is not None:
        built = create_image(ctx, account, ImageSpec(name=current.name, manifest_id=manifest_id))
        payload["imageId"] = built.image.id
        payload["waitForImage"] = built.image.id
    with ctx.write() as uow:
        account_id = existing_account(uow, account)
        if image_id is not None:
            _built_image(uow, account_id, image_id, account)
        others = [s.config for s in uow.services.all() if s.id != service_id]
        compute.check_fits(config, others)
        operation = _operation(account_id, service_id, payload)
        uow.operations.add(operation)
        uow.services.save(current.with_changes(operation_id=operation.id, updated_at=utcnow()))
        uow.commit()
    return get_service(ctx, account, service_id)


def delete_service(ctx: ServiceContext, account: AccountRef, service_id: str) -> bool:
    """Stop the replicas and forget the service; False when there was none."""
    with ctx.write() as uow:
        account_id = existing_account(uow, account)
        service = uow.services.get(account_id, service_id)
        if service is None:
            return False
        for operation in uow.operations.running_for_resource(service_id):
            uow.operations.request_cancel(operation.id)
        uow.commit()
    _compute(ctx).remove(service_id)
    with ctx.write() as uow:
        uow.deployments.expire_current(service_id, utcnow())
        uow.services.delete(service_id)
        uow.commit()
    shutil.rmtree(ctx.services_root / service_id, ignore_errors=True)
    return True


def get_service(ctx: ServiceContext, account: AccountRef, service_id: str) -> ServiceView:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        service = uow.services.get(account_id, service_id)
        if service is None:
            raise NotFound(
                f"service '{service_id}' does not exist in account {account.scope_key}",
                code="ServiceNotFound",
            )
        return _view(uow, service)


def list_services(
    ctx: ServiceContext,
    account: AccountRef,
    *,
    filters: dict[str, str | None],
    count: int,
    skip_token: str | None,
) -> Page[ServiceView]:
    after = decode_token(skip_token)
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        page = uow.services.list(account_id, after_seq=after, limit=count, **filters)
        return Page([_view(uow, service) for service in page.items], page.next_token)


def get_keys(ctx: ServiceContext, account: AccountRef, service_id: str) -> tuple[str, str]:
    get_service(ctx, account, service_id)
    with ctx.read() as uow:
        return uow.services.keys(service_id)


def regenerate_key(
    ctx: ServiceContext, account: AccountRef, service_id: str, key_type: str
) -> tuple[str, str]:
    if key_type not in KEY_TYPES:
        raise Invalid("keyType must be Primary or Secondary", target="keyType")
    get_service(ctx, account, service_id)
    with ctx.write() as uow:
        uow.services.set_key(service_id, key_type, new_key())
        uow.commit()
        keys = uow.services.keys(service_id)
    _compute(ctx).set_keys(service_id, key_hashes(keys))
    return keys


def scoring_uri(ctx: ServiceContext, service: WebService) -> str:
    return f"http://{ctx.service_host}:{service.port}/score"


def _view(uow: UnitOfWork, service: WebService) -> ServiceView:
    image = uow.images.by_id(service.image_id)
    operation = uow.operations.by_id(service.operation_id)
    assert image is not None
    assert operation is not None
    view = image_view(uow, image)
    models = [uow.models.get(service.account_id, m) for m in view.manifest.model_ids]
    return ServiceView(service, view, [m for m in models if m is not None], operation)


def _built_image(uow: UnitOfWork, account_id: int, image_id: str, account: AccountRef) -> None:
    image = uow.images.get(account_id, image_id)
    if image is None:
        raise Invalid(
            f"imageId: no image '{image_id}' in account {account.scope_key}",
            target="imageId",
            code="ImageNotFound",
        )
    operation = uow.operations.by_id(image.operation_id)
    if operation is None or operation.state is not OperationState.SUCCEEDED:
        state = operation.state.value if operation else "unknown"
        raise Invalid(
            f"imageId: image '{image_id}' is not built (its build is {state})",
            target="imageId",
            code="ImageNotReady",
        )


def _operation(account_id: int, service_id: str, payload: dict[str, Any]) -> Operation:
    return Operation(
        id=str(uuid.uuid4()),
        account_id=account_id,
        kind=OperationKind.SERVICE,
        resource_type="services",
        resource_id=service_id,
        state=OperationState.NOT_STARTED,
        created_at=utcnow(),
        max_attempts=3,
        progress="queued",
        payload=payload,
    )


def _free_port(ctx: ServiceContext, used: set[int]) -> int:
    low, high = ctx.service_ports
    for port in range(low, high + 1):
        if port in used:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((ctx.service_host, port))
            except OSError:
                continue
        return port
    raise Conflict(f"no free port left in {low}-{high} for a new service", code="NoFreePort")


def _compute(ctx: ServiceContext) -> ComputeTarget:
    if ctx.compute is None:
        raise Conflict("this process runs no compute target", code="NoCompute")
    return ctx.compute
