"""`modelyard service create|list|show|update|delete|keys|regenerate-key|score|logs`."""

from __future__ import annotations

import json
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
    help="Deploy images as live, key-protected scoring services.",
    no_args_is_help=True,
    callback=target_callback,
)

Replicas = Annotated[int | None, typer.Option("--replicas", help="Fixed replica count.")]
Autoscale = Annotated[bool | None, typer.Option("--autoscale/--no-autoscale")]
MinReplicas = Annotated[int | None, typer.Option("--min-replicas")]
MaxReplicas = Annotated[int | None, typer.Option("--max-replicas")]
TargetUtil = Annotated[int | None, typer.Option("--target-utilization", help="Percent.")]
Refresh = Annotated[int | None, typer.Option("--refresh-period", help="Autoscaler, seconds.")]
MaxConcurrent = Annotated[
    int | None, typer.Option("--max-concurrent", help="Requests per replica before 429.")
]
Cpu = Annotated[str | None, typer.Option("--cpu", help="Reserved per replica: 0.5, 1, 250m.")]
Memory = Annotated[str | None, typer.Option("--memory", help="Reserved per replica: 512Mi.")]
Collect = Annotated[bool | None, typer.Option("--collect-data/--no-collect-data")]
Insights = Annotated[bool | None, typer.Option("--app-insights/--no-app-insights")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until the replicas serve.")]


def settings_body(
    replicas: int | None,
    autoscale: bool | None,
    min_replicas: int | None,
    max_replicas: int | None,
    target_utilization: int | None,
    refresh: int | None,
    max_concurrent: int | None,
    cpu: str | None,
    memory: str | None,
    collect: bool | None,
    insights: bool | None,
) -> dict[str, Any]:
    """The request fields the flags name (flags not given are left out)."""
    body: dict[str, Any] = {}
    if replicas is not None:
        body["numReplicas"] = replicas
    scaler = {
        k: v
        for k, v in (
            ("autoscaleEnabled", autoscale),
            ("minReplicas", min_replicas),
            ("maxReplicas", max_replicas),
            ("targetUtilization", target_utilization),
            ("refreshPeriodInSeconds", refresh),
        )
        if v is not None
    }
    if scaler:
        body["autoScaler"] = scaler
    if max_concurrent is not None:
        body["maxConcurrentRequestsPerContainer"] = max_concurrent
    reservation = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if reservation:
        body["containerResourceReservation"] = reservation
    if collect is not None:
        body["dataCollection"] = {"storageEnabled": collect}
    if insights is not None:
        body["appInsightsEnabled"] = insights
    return body


def wait_for(client: Client, operation_id: str, what: str) -> dict[str, Any]:
    with Status(what, console=err_console) as status:
        while True:
            operation = client.get_operation(operation_id)
            status.update(f"{what}: {operation['state']} {operation.get('progress', '')}")
            if operation["state"] in ("Succeeded", "Failed", "Cancelled"):
                return operation
            time.sleep(0.3)


def curl_line(scoring_uri: str, key: str) -> str:
    return (
        f"curl -X POST {scoring_uri} -H 'Authorization: Bearer {key}' "
        "-H 'Content-Type: application/json' -d '{\"data\": [[1, 2, 3, 4]]}'"
    )


def _finish(
    client: Client, service: dict[str, Any], operation_id: str, wait: bool, as_json: bool
) -> None:
    if wait:
        operation = wait_for(client, operation_id, f"deploying {service['name']}")
        service = client.get_service(service["id"])
        if operation["state"] != "Succeeded":
            message = (operation.get("error") or {}).get("message", operation["state"])
            err_console.print(f"[red]deployment {operation['state'].lower()}[/red]: {message}")
            raise typer.Exit(1)
    if as_json:
        print_json(service)
        return
    console.print(
        f"service {service['name']} ({service['id']}): {service['state']}", highlight=False
    )
    console.print(f"scoring URI: {service['scoringUri']}", highlight=False)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n")],
    image: Annotated[str, typer.Option("--image", help="Image id.")],
    replicas: Replicas = None,
    autoscale: Autoscale = None,
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    target_utilization: TargetUtil = None,
    refresh_period: Refresh = None,
    max_concurrent: MaxConcurrent = None,
    cpu: Cpu = None,
    memory: Memory = None,
    collect_data: Collect = None,
    app_insights: Insights = None,
    wait: Wait = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a service from a built image."""
    body = settings_body(
        replicas,
        autoscale,
        min_replicas,
        max_replicas,
        target_utilization,
        refresh_period,
        max_concurrent,
        cpu,
        memory,
        collect_data,
        app_insights,
    )
    with reported_errors(), target(ctx).client() as client:
        service, operation_id = client.create_service(name, image, **body)
        _finish(client, service, operation_id, wait, as_json)


@app.command()
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Service name.")],
    image: Annotated[str | None, typer.Option("--image", help="New image id.")] = None,
    replicas: Replicas = None,
    autoscale: Autoscale = None,
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    target_utilization: TargetUtil = None,
    refresh_period: Refresh = None,
    max_concurrent: MaxConcurrent = None,
    cpu: Cpu = None,
    memory: Memory = None,
    collect_data: Collect = None,
    app_insights: Insights = None,
    wait: Wait = False,
    as_json: JsonOpt = False,
) -> None:
    """Roll a service to a new image and/or settings without dropping a request."""
    body = settings_body(
        replicas,
        autoscale,
        min_replicas,
        max_replicas,
        target_utilization,
        refresh_period,
        max_concurrent,
        cpu,
        memory,
        collect_data,
        app_insights,
    )
    if image:
        body["imageId"] = image
    with reported_errors(), target(ctx).client() as client:
        service_id = client.find_service(name)["id"]
        service, operation_id = client.update_service(service_id, **body)
        _finish(client, service, operation_id, wait, as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List services."""
    with reported_errors(), target(ctx).client() as client:
        services = list(client.list_services())
    if as_json:
        print_json(services)
        return
    print_table(
        "services",
        ["name", "state", "replicas", "image", "scoring URI"],
        [
            [
                s["name"],
                s["state"],
                f"{s['replicas']['ready']}/{s['replicas']['desired']}" if s["replicas"] else "-",
                f"{s['image']['name']}:{s['image']['version']}",
                s["scoringUri"],
            ]
            for s in services
        ],
    )


@app.command()
def show(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Show a service as JSON."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.find_service(name))


@app.command()
def delete(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Delete a service: its replicas stop and its port is freed."""
    with reported_errors(), target(ctx).client() as client:
        client.delete_service(client.find_service(name)["id"])
    console.print(f"deleted {name}")


@app.command()
def keys(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Print the service's two keys."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.get_service_keys(client.find_service(name)["id"]))


@app.command("regenerate-key")
def regenerate_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    key: Annotated[str, typer.Option("--key", help="Primary or Secondary.")] = "Primary",
) -> None:
    """Replace one key; the old one stops working within a second."""
    with reported_errors(), target(ctx).client() as client:
        print_json(client.regenerate_service_key(client.find_service(name)["id"], key))


@app.command()
def score(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    data: Annotated[str, typer.Option("--data", "-d", help="JSON body, or @file.json.")],
) -> None:
    """Score a service with its primary key and print the answer."""
    body = json.loads(open(data[1:]).read() if data.startswith("@") else data)  # noqa: SIM115
    with reported_errors(), target(ctx).client() as client:
        service = client.find_service(name)
        key = client.get_service_keys(service["id"])["primaryKey"]
        print_json(client.score(service["scoringUri"], key, body))


@app.command()
def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    tail: Annotated[int, typer.Option("--tail", help="Lines per log.")] = 200,
) -> None:
    """Print the service's deployment and replica logs."""
    with reported_errors(), target(ctx).client() as client:
        text = client.service_logs(client.find_service(name)["id"], tail)
    console.print(text, highlight=False, markup=False, end="")
