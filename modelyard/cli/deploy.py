"""`modelyard deploy ./model.pkl --name X`: register, package, build and serve, in one go."""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._account import Target
from modelyard.cli._common import (
    AccountOpt,
    HomeOpt,
    RgOpt,
    SubOpt,
    TokenOpt,
    UrlOpt,
    console,
    err_console,
    reported_errors,
)
from modelyard.cli.webservices import curl_line, wait_for
from modelyard.client import DEFAULT_URL, Client, NotFound

_PINNED_FORMATS = {".pkl": "scikit-learn", ".pickle": "scikit-learn", ".joblib": "scikit-learn"}


def local_requirements(model: Path) -> str:
    """Pin the library that wrote a pickle to the version installed here: unpickling
    with another version is a common way for a deployed model to break."""
    package = _PINNED_FORMATS.get(model.suffix.lower())
    if package is None:
        return ""
    try:
        return f"{package}=={importlib.metadata.version(package)}\n"
    except importlib.metadata.PackageNotFoundError:
        return f"{package}\n"


def deploy(
    model: Annotated[
        Path, typer.Argument(help="Model file (.pkl/.joblib/.onnx) or folder.", exists=True)
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Service (and model) name.")],
    driver: Annotated[
        Path | None,
        typer.Option(
            "--driver", help="score.py; default: the built-in driver for the model's format."
        ),
    ] = None,
    requirements: Annotated[Path | None, typer.Option("--requirements", "-r")] = None,
    replicas: Annotated[int, typer.Option("--replicas")] = 1,
    max_concurrent: Annotated[int | None, typer.Option("--max-concurrent")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    home: HomeOpt = None,
    subscription: SubOpt = "local",
    resource_group: RgOpt = "default",
    account: AccountOpt = "default",
) -> None:
    """Register a model, package it, build an image and deploy it as a service."""
    target = Target(url, token, home, subscription, resource_group, account)
    with reported_errors(), target.client() as client:
        registered = client.register_model(name, path=model) if model.is_file() else None
        if registered is None:
            raise typer.BadParameter("a folder model: archive it and register it with --unpack")
        console.print(f"[green]✓[/green] model {name} version {registered['version']}")
        manifest = _manifest(client, name, registered["id"], model, driver, requirements)
        console.print(f"[green]✓[/green] manifest {manifest['name']} version {manifest['version']}")
        image, operation_id = client.create_image(manifest["id"], name=name)
        _follow(client, operation_id, f"building image {name}:{image['version']}")
        console.print(f"[green]✓[/green] image {name}:{image['version']}")
        service, operation_id = _create_or_update(
            client, name, image["id"], replicas, max_concurrent
        )
        _follow(client, operation_id, f"deploying service {name}")
        service = client.get_service(service["id"])
        key = client.get_service_keys(service["id"])["primaryKey"]
    console.print(f"[green]✓[/green] service {name} is live")
    console.print(f"scoring URI: {service['scoringUri']}", highlight=False)
    console.print(curl_line(service["scoringUri"], key), highlight=False, soft_wrap=True)


def _manifest(
    client: Client,
    name: str,
    model_id: str,
    model: Path,
    driver: Path | None,
    requirements: Path | None,
) -> dict[str, Any]:
    assets = []
    if driver is not None:
        assets.append(
            {
                "id": "driver",
                "url": client.upload(driver)["url"],
                "mimeType": "application/x-python",
            }
        )
    if requirements is not None:
        pip_url = client.upload(requirements)["url"]
    else:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "requirements.txt"
            path.write_text(local_requirements(model))
            pip_url = client.upload(path)["url"]
    return client.create_manifest(
        name,
        driver="driver" if driver is not None else "",
        assets=assets,
        model_ids=[model_id],
        pip_requirements=pip_url,
    )


def _create_or_update(
    client: Client, name: str, image_id: str, replicas: int, max_concurrent: int | None
) -> tuple[dict[str, Any], str]:
    settings: dict[str, Any] = {"numReplicas": replicas}
    if max_concurrent is not None:
        settings["maxConcurrentRequestsPerContainer"] = max_concurrent
    try:
        existing = client.find_service(name)
    except NotFound:
        return client.create_service(name, image_id, **settings)
    return client.update_service(existing["id"], imageId=image_id, **settings)


def _follow(client: Client, operation_id: str, what: str) -> None:
    operation = wait_for(client, operation_id, what)
    if operation["state"] != "Succeeded":
        message = (operation.get("error") or {}).get("message", operation["state"])
        err_console.print(f"[red]✗ {what}[/red]: {message}")
        raise typer.Exit(1)
