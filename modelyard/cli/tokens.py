"""`modelyard token create|list|revoke` (needs an Owner token, e.g. the admin one)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli._account import target, target_callback
from modelyard.cli._common import JsonOpt, console, print_json, print_table, reported_errors

app = typer.Typer(
    help="Create, list and revoke bearer tokens (needs an Owner token).",
    no_args_is_help=True,
    callback=target_callback,
)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the token.")],
    role: Annotated[str, typer.Option("--role", help="Reader, Contributor or Owner.")] = (
        "Contributor"
    ),
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="subscriptionId/resourceGroup/account; repeatable."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once."""
    with reported_errors(), target(ctx).client() as client:
        created = client.create_token(name, role, scope)
    if as_json:
        print_json(created)
        return
    console.print(f"token {created['id']} ({created['role']}) — keep this secret, shown once:")
    console.print(created["token"], soft_wrap=True, highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    with reported_errors(), target(ctx).client() as client:
        tokens = client.list_tokens()
    if as_json:
        print_json(tokens)
        return
    print_table(
        "tokens",
        ["id", "name", "role", "scopes", "created", "revoked"],
        [
            [
                t["id"],
                t["name"],
                t["role"],
                ",".join(t["scopes"] or ["*"]),
                t["createdAt"],
                t["revokedAt"] or "",
            ]
            for t in tokens
        ],
    )


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id (from `modelyard token list`).")],
) -> None:
    """Revoke a token: it stops working at once."""
    with reported_errors(), target(ctx).client() as client:
        client.revoke_token(token_id)
    console.print(f"revoked {token_id}")
