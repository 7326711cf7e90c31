"""Service keys: the keys file's format and how Authorization headers are checked."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelyard.domain.errors import Invalid
from modelyard.runtime.auth import KeyRing, parse_keys_file


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_keys_file_lists_sha256_digests_in_hex() -> None:
    text = json.dumps({"sha256": [digest("primary"), digest("secondary").upper()]})
    assert parse_keys_file(text) == (
        hashlib.sha256(b"primary").digest(),
        hashlib.sha256(b"secondary").digest(),
    )


def test_an_empty_list_is_a_valid_file_that_admits_nobody() -> None:
    assert parse_keys_file('{"sha256": []}') == ()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"keys": ["x"]}',
        '{"sha256": "abc"}',
        '{"sha256": [1]}',
        '{"sha256": ["zz"]}',
        '{"sha256": ["abcd"]}',
    ],
)
def test_malformed_keys_files_are_refused(text: str) -> None:
    with pytest.raises(Invalid):
        parse_keys_file(text)


def test_the_bearer_key_matching_either_digest_is_allowed() -> None:
    ring = KeyRing(parse_keys_file(json.dumps({"sha256": [digest("k1"), digest("k2")]})))
    assert ring.allows(b"Bearer k1")
    assert ring.allows(b"Bearer k2")
    assert ring.allows(b"bearer k1")  # the scheme is case-insensitive


@pytest.mark.parametrize(
    "header", [None, b"", b"Bearer", b"Bearer ", b"Bearer k3", b"Basic k1", b"k1"]
)
def test_anything_else_is_refused(header: bytes | None) -> None:
    ring = KeyRing(parse_keys_file(json.dumps({"sha256": [digest("k1")]})))
    assert not ring.allows(header)


def test_an_empty_ring_refuses_every_key() -> None:
    assert not KeyRing().allows(b"Bearer anything")


def test_a_remembered_header_is_forgotten_when_the_keys_change() -> None:
    ring = KeyRing((hashlib.sha256(b"old").digest(),))
    assert ring.allows(b"Bearer old")
    assert ring.allows(b"Bearer old")  # now answered from the remembered header
    ring.digests = (hashlib.sha256(b"new").digest(),)
    assert not ring.allows(b"Bearer old")
    assert ring.allows(b"Bearer new")
