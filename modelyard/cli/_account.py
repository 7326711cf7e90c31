"""The options every account-scoped command takes, bundled into one typer callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from modelyard.cli._common import (
    AccountOpt,
    HomeOpt,
    RgOpt,
    SubOpt,
    TokenOpt,
    UrlOpt,
    make_client,
)
from modelyard.client import DEFAULT_URL, Client


@dataclass
class Target:
    url: str
    token: str | None
    home: Path | None
    subscription: str
    resource_group: str
    account: str

    def client(self) -> Client:
        return make_client(
            self.url, self.token, self.home, self.subscription, self.resource_group, self.account
        )


def target_callback(
    ctx: typer.Context,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    home: HomeOpt = None,
    subscription: SubOpt = "local",
    resource_group: RgOpt = "default",
    account: AccountOpt = "default",
) -> None:
    """Options naming the server and the account; they go before the sub-command."""
    ctx.obj = Target(url, token, home, subscription, resource_group, account)


def target(ctx: typer.Context) -> Target:
    found = ctx.find_object(Target)
    assert found is not None
    return found
