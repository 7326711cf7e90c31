"""Image use cases: queue a build, list, show, read the build log.

Creating an image stores the image row and its build operation in one transaction
and answers at once; a worker builds it (see `image_build.py`). The image's
creationState is its operation's state, read together, so the two never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, NotFound
from modelyard.domain.images import Image, ImageSpec
from modelyard.domain.manifests import Manifest
from modelyard.domain.operations import Operation, OperationKind, OperationState
from modelyard.services.context import ServiceContext, account_for_write, existing_account
from modelyard.store.paging import Page, decode_token
from modelyard.store.tables import utcnow
from modelyard.store.unit_of_work import UnitOfWork

IMAGE_KIND = "image"
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ImageView:
    """An image with what its responses embed: its manifest and its build operation."""

    image: Image
    manifest: Manifest
    operation: Operation


def create_image(ctx: ServiceContext, account: AccountRef, spec: ImageSpec) -> ImageView:
    with ctx.write() as uow:
        account_id = account_for_write(ctx, uow, account)
        manifest = uow.manifests.get(account_id, spec.manifest_id)
        if manifest is None:
            raise Invalid(
                f"manifestId: no manifest '{spec.manifest_id}' in account {account.scope_key}",
                target="manifestId",
                code="ManifestNotFound",
            )
        now = utcnow()
        operation = Operation(
            id=str(uuid.uuid4()),
            account_id=account_id,
            kind=OperationKind.IMAGE,
            resource_type="images",
            resource_id=str(uuid.uuid4()),
            state=OperationState.NOT_STARTED,
            created_at=now,
            max_attempts=MAX_ATTEMPTS,
            progress="queued",
        )
        image = Image(
            id=operation.resource_id,
            account_id=account_id,
            name=spec.name,
            version=uow.counters.next(account_id, IMAGE_KIND, spec.name),
            description=spec.description,
            image_type=spec.image_type,
            manifest_id=manifest.id,
            compute_resource_id=spec.compute_resource_id,
            operation_id=operation.id,
            registry_location=spec.registry.location,
            image_location=None,
            environment_sha256=None,
            created_at=now,
        )
        uow.operations.add(operation)
        uow.images.add(image, spec.registry)
        uow.commit()
    return ImageView(image, manifest, operation)


def get_image(ctx: ServiceContext, account: AccountRef, image_id: str) -> ImageView:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        image = uow.images.get(account_id, image_id)
        if image is None:
            raise NotFound(
                f"image '{image_id}' does not exist in account {account.scope_key}",
                code="ImageNotFound",
            )
        return image_view(uow, image)


def list_images(
    ctx: ServiceContext,
    account: AccountRef,
    *,
    manifest_id: str | None,
    manifest_name: str | None,
    count: int,
    skip_token: str | None,
) -> Page[ImageView]:
    after = decode_token(skip_token)
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        page = uow.images.list(
            account_id,
            manifest_id=manifest_id,
            manifest_name=manifest_name,
            after_seq=after,
            limit=count,
        )
        return Page([image_view(uow, image) for image in page.items], page.next_token)


def build_log_path(ctx: ServiceContext, image_id: str) -> Path:
    return ctx.images_root / image_id / "build.log"


def context_path(ctx: ServiceContext, image_id: str) -> Path:
    return ctx.images_root / image_id / "context"


def read_build_log(
    ctx: ServiceContext, account: AccountRef, image_id: str, offset: int
) -> tuple[bytes, int, ImageView]:
    """The log from byte `offset` on, the offset to ask for next, and the image."""
    view = get_image(ctx, account, image_id)
    path = build_log_path(ctx, image_id)
    if offset < 0:
        raise Invalid("offset must not be negative", target="offset")
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(4 * 1024 * 1024)
    except FileNotFoundError:
        data = b""
    return data, offset + len(data), view


def image_view(uow: UnitOfWork, image: Image) -> ImageView:
    """The image with its manifest and build operation, read in the caller's transaction."""
    manifest = uow.manifests.get(image.account_id, image.manifest_id)
    operation = uow.operations.by_id(image.operation_id)
    assert manifest is not None
    assert operation is not None
    return ImageView(image, manifest, operation)
