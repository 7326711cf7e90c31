"""Roles are ordered and scopes limit a token to named accounts."""

from __future__ import annotations

import pytest

from modelyard.domain.accounts import AccountRef
from modelyard.domain.auth import Principal, Role
from modelyard.domain.errors import Invalid, PermissionDenied

ACCOUNT = AccountRef.parse("sub", "MyGroup", "acct")


def test_a_higher_role_includes_the_lower_ones() -> None:
    Principal("t", "owner", Role.OWNER, None).require(Role.READER, ACCOUNT)


def test_a_reader_cannot_write() -> None:
    with pytest.raises(PermissionDenied):
        Principal("t", "r", Role.READER, None).require(Role.CONTRIBUTOR, ACCOUNT)


def test_a_scoped_token_reaches_only_its_accounts() -> None:
    scoped = Principal("t", "s", Role.CONTRIBUTOR, ("sub/mygroup/acct",))
    scoped.require(Role.CONTRIBUTOR, ACCOUNT)
    with pytest.raises(PermissionDenied):
        scoped.require(Role.READER, AccountRef.parse("sub", "mygroup", "other"))


def test_resource_groups_compare_case_insensitively() -> None:
    assert AccountRef.parse("s", "RG", "a") == AccountRef.parse("s", "rg", "a")


def test_role_names_parse_in_any_case() -> None:
    assert Role.parse("contributor") is Role.CONTRIBUTOR
    with pytest.raises(Invalid):
        Role.parse("admin")
