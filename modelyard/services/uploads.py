"""Uploads: a file streamed to the server so `url: upload://<id>` can name it.

This is how `modelyard model register --path ./model.pkl` works without the user
hosting the file anywhere, just as the Azure CLI uploaded to blob storage and sent
a SAS URL. The body is written to the blob store as it arrives: never held whole.
"""

from __future__ import annotations

import re
import uuid

from modelyard.artifacts import BlobWriter
from modelyard.domain.accounts import AccountRef
from modelyard.services.context import ServiceContext, account_for_write
from modelyard.store.tables import utcnow
from modelyard.store.uploads import Upload

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def open_upload(ctx: ServiceContext) -> BlobWriter:
    return ctx.blobs.writer(max_bytes=ctx.max_artifact_bytes)


def finish_upload(
    ctx: ServiceContext, account: AccountRef, writer: BlobWriter, file_name: str
) -> Upload:
    """Commit the streamed bytes and record them; on failure nothing stays behind."""
    ref, created = writer.commit()
    upload = Upload(
        id=str(uuid.uuid4()),
        account_id=0,
        sha256=ref.sha256,
        size=ref.size,
        file_name=_UNSAFE_NAME.sub("_", file_name)[:255],
        created_at=utcnow(),
    )
    try:
        with ctx.write() as uow:
            account_id = account_for_write(ctx, uow, account)
            upload = Upload(
                upload.id,
                account_id,
                upload.sha256,
                upload.size,
                upload.file_name,
                upload.created_at,
            )
            uow.uploads.add(upload)
            uow.commit()
    except BaseException:
        if created:
            ctx.blobs.delete(ref.sha256)
        raise
    return upload
