"""Shared CLI plumbing: which server and account to talk to, and how to show results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from modelyard.client import DEFAULT_URL, AccountPath, Client, ModelyardError, find_local_token

console = Console()
err_console = Console(stderr=True)

UrlOpt = Annotated[str, typer.Option("--url", envvar="MODELYARD_URL", help="Server base URL.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MODELYARD_TOKEN",
        help="Bearer token; default: the admin token of a local server's data dir.",
        show_default=False,
    ),
]
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="MODELYARD_HOME", help="Local server's data dir (for its token)."
    ),
]
SubOpt = Annotated[str, typer.Option("--subscription", envvar="MODELYARD_SUBSCRIPTION")]
RgOpt = Annotated[str, typer.Option("--resource-group", envvar="MODELYARD_RESOURCE_GROUP")]
AccountOpt = Annotated[str, typer.Option("--account", envvar="MODELYARD_ACCOUNT")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print raw JSON.")]


def make_client(
    url: str = DEFAULT_URL,
    token: str | None = None,
    home: Path | None = None,
    subscription: str = "local",
    resource_group: str = "default",
    account: str = "default",
) -> Client:
    token = token or find_local_token(home)
    return Client(url, token, AccountPath(subscription, resource_group, account))


@contextmanager
def reported_errors() -> Iterator[None]:
    """Show a server error as one readable line and exit 1, not a traceback."""
    try:
        yield
    except ModelyardError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(1) from None
    except OSError as exc:
        err_console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
