"""Version numbers per (account, kind, name), handed out by one atomic upsert.

`INSERT ... ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last` takes the row
lock on PostgreSQL and runs under the single writer on SQLite, so concurrent
registrations of one name get 1, 2, 3 ... exactly once with no retry loop. A version
is never handed out twice, even after its model was deleted.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from modelyard.store.dialect import upsert_module
from modelyard.store.tables import VersionCounterRow


class VersionCounters:
    def __init__(self, session: Session) -> None:
        self._session = session

    def next(self, account_id: int, kind: str, name: str) -> int:
        dialect = upsert_module(self._session)
        statement = (
            dialect.insert(VersionCounterRow)
            .values(account_id=account_id, kind=kind, name=name, last=1)
            .on_conflict_do_update(
                index_elements=["account_id", "kind", "name"],
                set_={"last": VersionCounterRow.last + 1},
            )
            .returning(VersionCounterRow.last)
        )
        version = self._session.execute(statement).scalar_one()
        return int(version)
