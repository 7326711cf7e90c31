"""Skip tokens round-trip and reject what the server did not issue."""

from __future__ import annotations

import pytest

from modelyard.domain.errors import Invalid
from modelyard.store.paging import decode_token, encode_token


def test_a_token_round_trips() -> None:
    assert decode_token(encode_token(41)) == 41


def test_no_token_means_the_first_page() -> None:
    assert decode_token(None) == 0


@pytest.mark.parametrize("token", ["garbage!", "e30", encode_token(1)[:-3] + "zzz"])
def test_a_foreign_token_is_a_clear_error(token: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode_token(token)
    assert caught.value.target == "$skipToken"
