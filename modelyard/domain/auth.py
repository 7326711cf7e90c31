"""Tokens and roles: who may do what, and where.

Roles are ordered: a Reader reads, a Contributor also writes, an Owner also manages
tokens. A token may be scoped to some accounts (`sub/rg/account`, resource group in
lower case); an unscoped token reaches every account.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, PermissionDenied


class Role(enum.IntEnum):
    READER = 1
    CONTRIBUTOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise Invalid(
                f"role '{text}' is not one of Reader, Contributor, Owner", target="role"
            ) from None


@dataclass(frozen=True)
class Principal:
    """The caller a bearer token resolved to."""

    token_id: str
    name: str
    role: Role
    scopes: tuple[str, ...] | None  # None: every account

    def require(self, role: Role, account: AccountRef | None = None) -> None:
        if self.role < role:
            raise PermissionDenied(
                f"token '{self.name}' has role {self.role.label}; this needs {role.label}"
            )
        if account is not None and self.scopes is not None:
            key = account.scope_key
            if key not in self.scopes:
                raise PermissionDenied(f"token '{self.name}' has no rights on account {key}")


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the secret itself."""

    id: str
    name: str
    role: Role
    scopes: tuple[str, ...] | None
    created_at: datetime
    revoked_at: datetime | None
