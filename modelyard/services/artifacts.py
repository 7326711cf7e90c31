"""Copy an artifact named by a URL into the blob store: models and assets alike.

One path for every artifact so the same safety rules hold everywhere: allowed
schemes and hosts, size caps, and safe unpacking. Nothing is visible in the store
until the bytes are complete and (when asked) the archive unpacked cleanly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from modelyard.artifacts import BlobRef, fetch_into, is_archive, unpack_archive
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, UnsafeArchive
from modelyard.services.context import ServiceContext

UPLOAD_SCHEME = "upload"


@dataclass(frozen=True)
class StoredArtifact:
    ref: BlobRef
    created: bool  # this call put the blob there (so a failure later should remove it)
    file_name: str


def store_artifact(
    ctx: ServiceContext, account: AccountRef, url: str, *, unpack: bool, field: str = "url"
) -> StoredArtifact:
    """Fetch `url` (or resolve `upload://id`) into the store; unpack safely if asked."""
    if urlsplit(url).scheme == UPLOAD_SCHEME:
        return _from_upload(ctx, account, url, unpack=unpack, field=field)
    try:
        with ctx.blobs.writer(max_bytes=ctx.max_artifact_bytes) as writer:
            file_name = fetch_into(url, writer, ctx.fetch_policy)
            tree = _unpack_checked(ctx, writer.temp_path, field) if unpack else None
            ref, created = writer.commit()
    except Invalid as exc:
        if field != "url" and exc.target == "url":
            raise type(exc)(f"{field}: {exc.message}", code=exc.code, target=field) from exc
        raise
    if tree is not None:
        ctx.blobs.put_tree(ref.sha256, tree)
    return StoredArtifact(ref, created, file_name)


def forget_blob_if_unused(ctx: ServiceContext, sha256: str) -> None:
    with ctx.read() as uow:
        in_use = uow.models.blob_in_use(sha256)
    if not in_use:
        ctx.blobs.delete(sha256)


def forget_created(ctx: ServiceContext, artifacts: list[StoredArtifact]) -> None:
    """Undo `store_artifact` calls of a request that failed later on."""
    for artifact in artifacts:
        if artifact.created:
            forget_blob_if_unused(ctx, artifact.ref.sha256)


def _from_upload(
    ctx: ServiceContext, account: AccountRef, url: str, *, unpack: bool, field: str
) -> StoredArtifact:
    upload_id = urlsplit(url).netloc
    with ctx.read() as uow:
        account_id = uow.accounts.find(account)
        upload = uow.uploads.get(account_id, upload_id) if account_id is not None else None
    if upload is None:
        raise Invalid(
            f"{field}: no upload '{upload_id}' in account {account.scope_key}",
            target=field,
            code="UploadNotFound",
        )
    if unpack and ctx.blobs.tree_path(upload.sha256) is None:
        tree = _unpack_checked(ctx, ctx.blobs.path(upload.sha256), field)
        ctx.blobs.put_tree(upload.sha256, tree)
    return StoredArtifact(BlobRef(upload.sha256, upload.size), False, upload.file_name)


def _unpack_checked(ctx: ServiceContext, archive: Path, field: str) -> Path:
    if not is_archive(archive):
        raise UnsafeArchive(
            f"{field}: unpack is true but the artifact is not a zip or tar archive",
            target="unpack",
        )
    scratch = ctx.blobs.scratch_dir()
    try:
        unpack_archive(archive, scratch, ctx.unpack_limits)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch
