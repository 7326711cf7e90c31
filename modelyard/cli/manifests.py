"""`modelyard manifest create|list|show`."""

from __future__ import annotations

import re
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._account import target, target_callback
from modelyard.cli._common import JsonOpt, console, print_json, print_table, reported_errors
from modelyard.client import Client

app = typer.Typer(
    help="Describe how models are scored: driver, assets, models, runtime.",
    no_args_is_help=True,
    callback=target_callback,
)

_ASSET_ID = re.compile(r"[^A-Za-z0-9-]")


def asset_id_for(path: str, taken: set[str]) -> str:
    """A seed-valid asset id from a file name: alphanumerics and hyphens, at most 32."""
    base = _ASSET_ID.sub("-", Path(path).name).strip("-")[:28] or "asset"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _is_url(value: str) -> bool:
    return "://" in value


def _asset(client: Client, source: str, asset_id: str, mime: str) -> dict[str, Any]:
    """Upload a local file (a folder as a tar.gz, unpacked by the server) or pass a URL."""
    if _is_url(source):
        return {"id": asset_id, "url": source, "mimeType": mime, "unpack": False}
    path = Path(source)
    if path.is_dir():
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / f"{path.name}.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(path, arcname=path.name)
            uploaded = client.upload(archive)
        return {
            "id": asset_id,
            "url": uploaded["url"],
            "mimeType": "application/gzip",
            "unpack": True,
        }
    if not path.is_file():
        raise typer.BadParameter(f"{source} is neither a file, a folder nor a URL")
    return {"id": asset_id, "url": client.upload(path)["url"], "mimeType": mime, "unpack": False}


def _file_url(client: Client, source: str | None) -> str | None:
    if source is None or _is_url(source):
        return source
    path = Path(source)
    if not path.is_file():
        raise typer.BadParameter(f"{source} is not a file")
    url: str = client.upload(path)["url"]
    return url


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Manifest name.")],
    driver: Annotated[
        str | None,
        typer.Option(
            "--driver",
            help="score.py (file or URL); leave out for the built-in "
            "driver of a scikit-learn, ONNX or MLflow model.",
        ),
    ] = None,
    asset: Annotated[
        list[str] | None, typer.Option("--asset", "-a", help="File, folder or URL; repeatable.")
    ] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model id.")] = None,
    requirements: Annotated[
        str | None, typer.Option("--requirements", "-r", help="requirements.txt (file or URL).")
    ] = None,
    conda: Annotated[str | None, typer.Option("--conda", help="Conda env file.")] = None,
    runtime: Annotated[str, typer.Option("--runtime", help="Python or SparkPython.")] = "Python",
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a manifest from local files; they are uploaded to the server first."""
    with reported_errors(), target(ctx).client() as client:
        taken = {"driver"}
        assets = [_asset(client, driver, "driver", "application/x-python")] if driver else []
        assets += [
            _asset(client, source, asset_id_for(source, taken), "application/octet-stream")
            for source in asset or []
        ]
        manifest = client.create_manifest(
            name,
            driver="driver" if driver else "",
            assets=assets,
            model_ids=model or [],
            runtime=runtime,
            pip_requirements=_file_url(client, requirements),
            conda_env_file=_file_url(client, conda),
            description=description,
        )
    if as_json:
        print_json(manifest)
        return
    console.print(
        f"created manifest [bold]{manifest['name']}[/bold] version {manifest['version']}  "
        f"id {manifest['id']}"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List manifests, optionally by name or model."""
    with reported_errors(), target(ctx).client() as client:
        manifests = list(client.list_manifests(model_id=model, name=name))
    if as_json:
        print_json(manifests)
        return
    print_table(
        "manifests",
        ["name", "version", "id", "runtime", "models", "created"],
        [
            [
                m["name"],
                str(m["version"]),
                m["id"],
                m["targetRuntime"]["runtimeType"],
                str(len(m["modelIds"])),
                m["createdTime"],
            ]
            for m in manifests
        ],
    )


@app.command()
def show(ctx: typer.Context, manifest_id: Annotated[str, typer.Argument()]) -> None:
    """Show one manifest as JSON."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.get_manifest(manifest_id))
