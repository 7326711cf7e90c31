"""Account repository: the namespace rows everything else hangs from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.domain.accounts import AccountRef
from modelyard.store.dialect import insert_ignore
from modelyard.store.tables import AccountRow, utcnow


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, ref: AccountRef) -> int | None:
        return self._session.scalar(
            select(AccountRow.id).where(
                AccountRow.subscription_id == ref.subscription_id,
                AccountRow.resource_group == ref.resource_group,
                AccountRow.name == ref.name,
            )
        )

    def ensure(self, ref: AccountRef) -> int:
        """The account's id, creating it if needed; safe against a concurrent creator."""
        existing = self.find(ref)
        if existing is not None:
            return existing
        self._session.execute(
            insert_ignore(self._session, AccountRow).values(
                subscription_id=ref.subscription_id,
                resource_group=ref.resource_group,
                name=ref.name,
                created_at=utcnow(),
            )
        )
        created = self.find(ref)
        assert created is not None
        return created
