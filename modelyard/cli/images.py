"""`modelyard image create|list|show|log` and `modelyard operation show|cancel`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.status import Status

from modelyard.cli._account import target, target_callback
from modelyard.cli._common import (
    JsonOpt,
    console,
    err_console,
    print_json,
    print_table,
    reported_errors,
)
from modelyard.client import Client

app = typer.Typer(
    help="Build images from manifests.", no_args_is_help=True, callback=target_callback
)
operations = typer.Typer(
    help="Follow and cancel async operations.", no_args_is_help=True, callback=target_callback
)


def follow_build(client: Client, image_id: str, operation_id: str, *, show_log: bool) -> str:
    """Stream the build log and show progress until the operation ends; returns its state."""
    offset = 0
    with Status("queued", console=err_console) as status:
        while True:
            text, offset, _ = client.read_build_log(image_id, offset)
            if text and show_log:
                for line in text.rstrip("\n").splitlines():
                    status.console.print(line, highlight=False, markup=False)
            operation = client.get_operation(operation_id)
            status.update(f"{operation['state']}: {operation.get('progress', '')}")
            if operation["state"] in ("Succeeded", "Failed", "Cancelled"):
                text, offset, _ = client.read_build_log(image_id, offset)
                if text and show_log:
                    for line in text.rstrip("\n").splitlines():
                        status.console.print(line, highlight=False, markup=False)
                return str(operation["state"])
            time.sleep(0.5)


@app.command()
def create(
    ctx: typer.Context,
    manifest: Annotated[str, typer.Option("--manifest", help="Manifest id.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Default: manifest's.")] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Follow the build to its end.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="With --wait: no log.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Queue an image build; with --wait, show progress and stream the build log."""
    with reported_errors(), target(ctx).client() as client:
        image, operation_id = client.create_image(manifest, name=name, description=description)
        console.print(
            f"image {image['name']}:{image['version']} id {image['id']}, operation {operation_id}",
            highlight=False,
        )
        if not wait:
            return
        state = follow_build(client, image["id"], operation_id, show_log=not quiet)
        final = client.get_image(image["id"])
    if as_json:
        print_json(final)
    if state != "Succeeded":
        error: dict[str, Any] = final.get("error") or {}
        err_console.print(f"[red]build {state.lower()}[/red]: {error.get('message', '')}")
        raise typer.Exit(1)
    console.print(f"built: {final['imageLocation']}", highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    manifest: Annotated[str | None, typer.Option("--manifest", help="Manifest id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List images."""
    with reported_errors(), target(ctx).client() as client:
        images = list(client.list_images(manifest_id=manifest))
    if as_json:
        print_json(images)
        return
    print_table(
        "images",
        ["name", "version", "id", "state", "manifest", "created"],
        [
            [
                i["name"],
                str(i["version"]),
                i["id"],
                i["creationState"],
                i["manifest"]["name"],
                i["createdTime"],
            ]
            for i in images
        ],
    )


@app.command()
def show(ctx: typer.Context, image_id: Annotated[str, typer.Argument()]) -> None:
    """Show one image as JSON (its manifest embedded)."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.get_image(image_id))


@app.command()
def log(ctx: typer.Context, image_id: Annotated[str, typer.Argument()]) -> None:
    """Print an image's build log."""
    with reported_errors(), target(ctx).client() as client:
        text, _, _ = client.read_build_log(image_id)
    console.print(text, highlight=False, markup=False, end="")


@operations.command("show")
def show_operation(ctx: typer.Context, operation_id: Annotated[str, typer.Argument()]) -> None:
    """Show an operation's status as JSON."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.get_operation(operation_id))


@operations.command("cancel")
def cancel_operation(
    ctx: typer.Context, operation_id: Annotated[str, typer.Argument()], as_json: JsonOpt = False
) -> None:
    """Cancel an operation; a running build stops within about a second."""
    with reported_errors(), target(ctx).client() as client:
        status = client.cancel_operation(operation_id)
    if as_json:
        print_json(status)
    else:
        console.print(f"operation {operation_id}: {status['state']}")
