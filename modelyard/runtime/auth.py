"""Service keys: who may call `POST /score`, re-read as soon as the keys file changes.

The supervisor writes the sha256 of a service's primary and secondary keys to a
file (never the keys themselves, so a replica's environment cannot leak them) and
rewrites it when a key is regenerated. A replica polls the file's identity four
times a second, so a regenerated key stops working within a second, with no restart
and no message between the supervisor and its replicas.

Fail closed: a keys file that is missing or unreadable at start-up admits nobody;
one that turns unreadable later (caught half-written) keeps the last good keys and
is read again on the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

from modelyard.domain.errors import Invalid

__all__ = ["KeyFileWatcher", "KeyRing", "parse_keys_file"]

_log = logging.getLogger("modelyard.runtime")
POLL_INTERVAL_S = 0.25


def parse_keys_file(text: str) -> tuple[bytes, ...]:
    """The key digests in a keys file's text: `{"sha256": ["<64 hex digits>", ...]}`."""
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise Invalid(f"keys file is not JSON: {exc}") from exc
    hashes = document.get("sha256") if isinstance(document, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise Invalid('keys file must look like {"sha256": ["<hex digest>", ...]}')
    digests = []
    for value in hashes:
        try:
            digest = bytes.fromhex(value.strip())
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise Invalid(f"keys file: {value!r} is not a hex sha256 digest")
        digests.append(digest)
    return tuple(digests)


class KeyRing:
    """The digests of the keys currently accepted; checks `Authorization` headers."""

    def __init__(self, digests: tuple[bytes, ...] = ()) -> None:
        self._digests = digests
        self._last_accepted: bytes | None = None

    @property
    def digests(self) -> tuple[bytes, ...]:
        return self._digests

    @digests.setter
    def digests(self, digests: tuple[bytes, ...]) -> None:
        # A key change forgets the remembered header at once: a revoked key must fail.
        self._last_accepted = None
        self._digests = digests

    def allows(self, authorization: bytes | None) -> bool:
        """True when `authorization` is `Bearer <key>` for one of the accepted keys.

        Every digest is compared in constant time, and all of them always, so the
        answer's timing says nothing about which key (or how much of one) matched.
        The last accepted header is remembered and compared first (also in constant
        time): clients repeat the same header, and this skips the hash on the hot path.
        """
        if not authorization:
            return False
        last = self._last_accepted
        if last is not None and hmac.compare_digest(authorization, last):
            return True
        scheme, _, token = authorization.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return False
        presented = hashlib.sha256(token).digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(digest, presented)
        if matched:
            self._last_accepted = authorization
        return matched


class KeyFileWatcher:
    """Keeps a KeyRing equal to a keys file, polling the file's mtime, size and inode."""

    def __init__(self, path: Path, ring: KeyRing, interval_s: float = POLL_INTERVAL_S) -> None:
        self.path = path
        self.ring = ring
        self.interval_s = interval_s
        self._seen: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        """Re-read the file if it changed since the last good read."""
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            if self._seen is None and not self.ring.digests:
                _log.error(
                    "keys file %s cannot be read (%s): scoring refuses every key", self.path, exc
                )
                self._seen = (-1, -1, -1)
            return
        identity = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if identity == self._seen:
            return
        try:
            digests = parse_keys_file(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, Invalid) as exc:
            # Perhaps caught half-written: keep the last good keys, look again next poll.
            _log.warning("keys file %s not read (%s); keeping the previous keys", self.path, exc)
            return
        self.ring.digests = digests
        self._seen = identity

    def start(self) -> None:
        """Read the file now and then poll it from a task on the running loop."""
        self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.refresh()
