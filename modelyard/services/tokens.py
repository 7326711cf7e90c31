"""Bearer tokens: create, list, revoke, and resolve a presented secret to a Principal.

Secrets are 256-bit random strings, so an unsalted SHA-256 is enough to store them
(nothing to brute-force), and lookup by hash is an index seek. The final comparison
uses `hmac.compare_digest` so timing does not leak how much of a hash matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from pathlib import Path

from modelyard.domain.auth import Principal, Role, TokenInfo
from modelyard.domain.errors import Invalid, NotFound, Unauthenticated
from modelyard.store.database import Database
from modelyard.store.tables import utcnow
from modelyard.store.unit_of_work import UnitOfWork

TOKEN_PREFIX = "myd_"  # noqa: S105 - a prefix that marks secrets, not a secret
_NAME_MAX = 64


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    db: Database, name: str, role: Role, scopes: tuple[str, ...] | None = None
) -> tuple[TokenInfo, str]:
    """A new token and its secret; the secret is shown once and never stored."""
    if not name or len(name) > _NAME_MAX:
        raise Invalid(f"token name must be 1-{_NAME_MAX} characters", target="name")
    if scopes is not None:
        scopes = tuple(_normalise_scope(scope) for scope in scopes)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(str(uuid.uuid4()), name, role, scopes, utcnow(), None)
    with UnitOfWork(db, write=True) as uow:
        uow.tokens.add(info, hash_secret(secret))
        uow.commit()
    return info, secret


def list_tokens(db: Database) -> list[TokenInfo]:
    with UnitOfWork(db, write=False) as uow:
        return uow.tokens.list()


def revoke_token(db: Database, token_id: str, cache: TokenCache | None = None) -> TokenInfo:
    with UnitOfWork(db, write=True) as uow:
        info = uow.tokens.get(token_id)
        if info is None:
            raise NotFound(f"token '{token_id}' does not exist", code="TokenNotFound")
        uow.tokens.revoke(token_id, utcnow())
        uow.commit()
        revoked = uow.tokens.get(token_id)
    if cache is not None:
        cache.clear()
    assert revoked is not None
    return revoked


class TokenCache:
    """Recently resolved tokens, so a management call costs no auth query.

    Entries live `ttl_s` seconds. Revoking through this server clears the cache at
    once; another server process sharing the database sees a revocation within
    `ttl_s`.
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, secret_hash: str) -> Principal | None:
        entry = self._entries.get(secret_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, secret_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[secret_hash] = (time.monotonic() + self.ttl_s, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def authenticate(db: Database, secret: str | None, cache: TokenCache | None = None) -> Principal:
    if not secret:
        raise Unauthenticated("missing Authorization: Bearer <token> header")
    presented = hash_secret(secret)
    if cache is not None and (cached := cache.get(presented)) is not None:
        return cached
    with UnitOfWork(db, write=False) as uow:
        found = uow.tokens.by_hash(presented)
    if found is None or not hmac.compare_digest(found[1], presented):
        raise Unauthenticated("the bearer token is not valid")
    info = found[0]
    if info.revoked_at is not None:
        raise Unauthenticated("the bearer token has been revoked")
    principal = Principal(info.id, info.name, info.role, info.scopes)
    if cache is not None:
        cache.put(presented, principal)
    return principal


def ensure_admin_token(db: Database, path: Path) -> bool:
    """Make sure an Owner token exists in `path` (mode 0600); True if one was created.

    An existing file is honoured (its hash re-registered), so pointing a fresh database
    at an old data dir keeps the same admin token working.
    """
    if path.exists():
        secret = path.read_text().strip()
        info = TokenInfo(str(uuid.uuid4()), "admin", Role.OWNER, None, utcnow(), None)
        with UnitOfWork(db, write=True) as uow:
            uow.tokens.add(info, hash_secret(secret))  # ignored when already present
            uow.commit()
        return False
    info, secret = create_token(db, "admin", Role.OWNER)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return True


def _normalise_scope(scope: str) -> str:
    parts = scope.strip("/").split("/")
    if len(parts) != 3 or not all(parts):
        raise Invalid(
            f"scope '{scope}' must be subscriptionId/resourceGroup/accountName", target="scopes"
        )
    return f"{parts[0]}/{parts[1].lower()}/{parts[2]}"
