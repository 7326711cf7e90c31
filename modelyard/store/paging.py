"""Keyset paging: opaque `$skipToken`s that stay valid while rows are inserted.

A token encodes the `seq` of the last row served; the next page is "seq greater
than that", so rows inserted meanwhile never shift what a walker sees.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from modelyard.domain.errors import Invalid

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


def encode_token(after_seq: int) -> str:
    raw = json.dumps({"v": 1, "after": after_seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    """The seq to continue after; 0 for the first page. Bad tokens are a 400."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        if data.get("v") != 1 or not isinstance(after, int) or after < 0:
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid("$skipToken is not a token this server issued", target="$skipToken") from None
    return after


def page_of(rows: Sequence[Any], limit: int, to_entity: Callable[[Any], T]) -> Page[T]:
    """A page from `limit + 1` rows fetched in `seq` order: the extra row only says
    whether a next page exists, and the token points after the last row served."""
    served = rows[:limit]
    token = encode_token(served[-1].seq) if len(rows) > limit and served else None
    return Page([to_entity(row) for row in served], token)
