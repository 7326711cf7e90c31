"""Token repository: only hashes of secrets are stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelyard.domain.auth import Role, TokenInfo
from modelyard.store.dialect import insert_ignore
from modelyard.store.tables import TokenRow


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, info: TokenInfo, secret_hash: str) -> None:
        self._session.execute(
            insert_ignore(self._session, TokenRow).values(
                id=info.id,
                name=info.name,
                secret_hash=secret_hash,
                role=int(info.role),
                scopes=list(info.scopes) if info.scopes is not None else None,
                created_at=info.created_at,
                revoked_at=None,
            )
        )

    def by_hash(self, secret_hash: str) -> tuple[TokenInfo, str] | None:
        row = self._session.scalar(select(TokenRow).where(TokenRow.secret_hash == secret_hash))
        return (_to_info(row), row.secret_hash) if row is not None else None

    def get(self, token_id: str) -> TokenInfo | None:
        row = self._session.get(TokenRow, token_id)
        return _to_info(row) if row is not None else None

    def list(self) -> list[TokenInfo]:
        rows = self._session.scalars(select(TokenRow).order_by(TokenRow.created_at, TokenRow.id))
        return [_to_info(row) for row in rows]

    def revoke(self, token_id: str, when: datetime) -> None:
        self._session.execute(
            update(TokenRow)
            .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=when)
        )


def _to_info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        scopes=tuple(row.scopes) if row.scopes is not None else None,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
