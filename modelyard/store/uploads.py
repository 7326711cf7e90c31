"""Upload repository: files streamed to the server, referenced later by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.store.tables import UploadRow


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: int
    sha256: str
    size: int
    file_name: str
    created_at: datetime


class UploadRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, upload: Upload) -> None:
        self._session.add(
            UploadRow(
                id=upload.id,
                account_id=upload.account_id,
                sha256=upload.sha256,
                size=upload.size,
                file_name=upload.file_name,
                created_at=upload.created_at,
            )
        )

    def get(self, account_id: int, upload_id: str) -> Upload | None:
        row = self._session.scalar(
            select(UploadRow).where(UploadRow.account_id == account_id, UploadRow.id == upload_id)
        )
        if row is None:
            return None
        return Upload(row.id, row.account_id, row.sha256, row.size, row.file_name, row.created_at)
