"""Model registry use cases: register, list, show, download, delete.

Registration does the slow part (fetching and unpacking the artifact) before any
transaction opens, so the database holds its write lock only for the version
number and the row. A request that fails validation, fetching or unpacking leaves
no row and no blob behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Conflict, NotFound
from modelyard.domain.models import Model, ModelSpec
from modelyard.services.artifacts import forget_blob_if_unused, forget_created, store_artifact
from modelyard.services.context import ServiceContext, account_for_write, existing_account
from modelyard.store.paging import Page, decode_token
from modelyard.store.tables import utcnow

MODEL_KIND = "model"


def register_model(ctx: ServiceContext, account: AccountRef, spec: ModelSpec) -> Model:
    artifact = store_artifact(ctx, account, spec.url, unpack=spec.unpack)
    try:
        with ctx.write() as uow:
            account_id = account_for_write(ctx, uow, account)
            model = Model(
                id=str(uuid.uuid4()),
                account_id=account_id,
                name=spec.name,
                version=uow.counters.next(account_id, MODEL_KIND, spec.name),
                url=spec.url,
                mime_type=spec.mime_type,
                unpack=spec.unpack,
                description=spec.description,
                created_at=utcnow(),
                sha256=artifact.ref.sha256,
                size=artifact.ref.size,
                tags=spec.tags,
                file_name=artifact.file_name,
            )
            uow.models.add(model)
            uow.commit()
    except BaseException:
        forget_created(ctx, [artifact])
        raise
    return model


def list_models(
    ctx: ServiceContext,
    account: AccountRef,
    *,
    name: str | None,
    tag: str | None,
    count: int,
    skip_token: str | None,
) -> Page[Model]:
    after = decode_token(skip_token)
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        return uow.models.list(account_id, name=name, tag=tag, after_seq=after, limit=count)


def get_model(ctx: ServiceContext, account: AccountRef, model_id: str) -> Model:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        model = uow.models.get(account_id, model_id)
    if model is None:
        raise _missing(account, model_id)
    return model


def model_content_path(
    ctx: ServiceContext, account: AccountRef, model_id: str
) -> tuple[Model, Path]:
    """The stored artifact as registered (the archive itself when it was unpacked)."""
    model = get_model(ctx, account, model_id)
    return model, ctx.blobs.path(model.sha256)


def delete_model(ctx: ServiceContext, account: AccountRef, model_id: str) -> None:
    with ctx.write() as uow:
        account_id = existing_account(uow, account)
        model = uow.models.get(account_id, model_id)
        if model is None:
            raise _missing(account, model_id)
        users = uow.models.manifests_using(model_id)
        if users:
            raise Conflict(
                f"model '{model_id}' is used by manifest(s) {', '.join(users)}; delete those first",
                code="ModelInUse",
            )
        uow.models.delete(model_id)
        uow.commit()
    forget_blob_if_unused(ctx, model.sha256)


def _missing(account: AccountRef, model_id: str) -> NotFound:
    return NotFound(
        f"model '{model_id}' does not exist in account {account.scope_key}",
        code="ModelNotFound",
    )
