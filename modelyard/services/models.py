"""Model registry use cases: register, list, show, download, delete.

Registration does the slow part (fetching and unpacking the artifact) before any
transaction opens, so the database holds its write lock only for the version
number and the row. A request that fails validation, fetching or unpacking leaves
no row and no blob behind.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from modelyard.artifacts import BlobRef, fetch_into, is_archive, unpack_archive
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Conflict, Invalid, NotFound, UnsafeArchive
from modelyard.domain.models import Model, ModelSpec
from modelyard.services.context import ServiceContext, account_for_write, existing_account
from modelyard.store.paging import Page, decode_token
from modelyard.store.tables import utcnow

UPLOAD_SCHEME = "upload"
MODEL_KIND = "model"


@dataclass(frozen=True)
class _StoredArtifact:
    ref: BlobRef
    created: bool
    file_name: str


def register_model(ctx: ServiceContext, account: AccountRef, spec: ModelSpec) -> Model:
    artifact = _store_artifact(ctx, account, spec.url, unpack=spec.unpack)
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
        if artifact.created:
            _forget_blob_if_unused(ctx, artifact.ref.sha256)
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
        raise NotFound(
            f"model '{model_id}' does not exist in account {account.scope_key}",
            code="ModelNotFound",
        )
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
            raise NotFound(
                f"model '{model_id}' does not exist in account {account.scope_key}",
                code="ModelNotFound",
            )
        users = uow.models.manifests_using(model_id)
        if users:
            raise Conflict(
                f"model '{model_id}' is used by manifest(s) {', '.join(users)}; delete those first",
                code="ModelInUse",
            )
        uow.models.delete(model_id)
        uow.commit()
    _forget_blob_if_unused(ctx, model.sha256)


def _store_artifact(
    ctx: ServiceContext, account: AccountRef, url: str, *, unpack: bool
) -> _StoredArtifact:
    if urlsplit(url).scheme == UPLOAD_SCHEME:
        return _artifact_from_upload(ctx, account, url, unpack=unpack)
    with ctx.blobs.writer(max_bytes=ctx.max_artifact_bytes) as writer:
        file_name = fetch_into(url, writer, ctx.fetch_policy)
        tree = _unpack_checked(ctx, writer.temp_path) if unpack else None
        ref, created = writer.commit()
    if tree is not None:
        _install_tree(ctx, ref.sha256, tree)
    return _StoredArtifact(ref, created, file_name)


def _artifact_from_upload(
    ctx: ServiceContext, account: AccountRef, url: str, *, unpack: bool
) -> _StoredArtifact:
    upload_id = urlsplit(url).netloc
    with ctx.read() as uow:
        account_id = uow.accounts.find(account)
        upload = uow.uploads.get(account_id, upload_id) if account_id is not None else None
    if upload is None:
        raise Invalid(
            f"url: no upload '{upload_id}' in account {account.scope_key}",
            target="url",
            code="UploadNotFound",
        )
    if unpack and ctx.blobs.tree_path(upload.sha256) is None:
        tree = _unpack_checked(ctx, ctx.blobs.path(upload.sha256))
        _install_tree(ctx, upload.sha256, tree)
    return _StoredArtifact(BlobRef(upload.sha256, upload.size), False, upload.file_name)


def _unpack_checked(ctx: ServiceContext, archive: Path) -> Path:
    if not is_archive(archive):
        raise UnsafeArchive(
            "unpack is true but the artifact is not a zip or tar archive", target="unpack"
        )
    scratch = ctx.blobs.scratch_dir()
    try:
        unpack_archive(archive, scratch, ctx.unpack_limits)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


def _install_tree(ctx: ServiceContext, sha256: str, tree: Path) -> None:
    ctx.blobs.put_tree(sha256, tree)


def _forget_blob_if_unused(ctx: ServiceContext, sha256: str) -> None:
    with ctx.read() as uow:
        in_use = uow.models.blob_in_use(sha256)
    if not in_use:
        ctx.blobs.delete(sha256)
