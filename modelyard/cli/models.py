"""`modelyard model register|list|show|download|delete`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from modelyard.cli._account import target, target_callback
from modelyard.cli._common import (
    JsonOpt,
    console,
    print_json,
    print_table,
    reported_errors,
)

app = typer.Typer(
    help="Register, list, show, download and delete models.",
    no_args_is_help=True,
    callback=target_callback,
)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    )


@app.command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    path: Annotated[
        Path | None, typer.Option("--path", "-p", help="Local file to upload.", exists=True)
    ] = None,
    url: Annotated[str | None, typer.Option("--model-url", help="URL the server fetches.")] = None,
    mime_type: Annotated[str, typer.Option("--mime-type")] = "application/octet-stream",
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Repeatable.")] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    unpack: Annotated[bool, typer.Option("--unpack", help="Unpack a zip/tar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a model from a local file (--path) or a URL (--model-url)."""
    if (path is None) == (url is None):
        raise typer.BadParameter("give exactly one of --path or --model-url")
    with reported_errors(), target(ctx).client() as client:
        if path is not None and path.is_dir():
            raise typer.BadParameter("--path must be a file; archive a folder and use --unpack")
        if path is not None:
            with _progress() as progress:
                task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
                model = client.register_model(
                    name,
                    path=path,
                    mime_type=mime_type,
                    tags=tag,
                    description=description,
                    unpack=unpack,
                    progress=lambda n: progress.advance(task, n),
                )
        else:
            model = client.register_model(
                name,
                url=url,
                mime_type=mime_type,
                tags=tag,
                description=description,
                unpack=unpack,
            )
    if as_json:
        print_json(model)
        return
    console.print(
        f"registered [bold]{model['name']}[/bold] version {model['version']}  id {model['id']}"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List models, all pages, optionally by name or tag."""
    with reported_errors(), target(ctx).client() as client:
        models = list(client.list_models(name=name, tag=tag))
    if as_json:
        print_json(models)
        return
    print_table(
        "models",
        ["name", "version", "id", "size", "tags", "created"],
        [
            [
                m["name"],
                str(m["version"]),
                m["id"],
                str(m["size"]),
                ",".join(m["tags"]),
                m["createdAt"],
            ]
            for m in models
        ],
    )


@app.command()
def show(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Model id.")],
) -> None:
    """Show one model as JSON."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.get_model(model_id))


@app.command()
def download(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Model id.")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="File or folder.")] = Path(),
) -> None:
    """Download a model's stored artifact."""
    with reported_errors(), target(ctx).client() as client:
        size = int(client.get_model(model_id)["size"])
        with _progress() as progress:
            task = progress.add_task("downloading", total=size)
            written = client.download_model(
                model_id, dest, progress=lambda n: progress.advance(task, n)
            )
    console.print(f"saved {written}")


@app.command()
def delete(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Model id.")],
) -> None:
    """Delete a model (refused while a manifest uses it)."""
    with reported_errors(), target(ctx).client() as client:
        client.delete_model(model_id)
    console.print(f"deleted {model_id}")
