"""Realtime service and deployment routes, built once per MMS route family."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import (
    account_from,
    build_log_uri,
    family_router,
    list_response,
    read_json,
    resource_uri,
)
from modelyard.api.mms.family import MmsFamily
from modelyard.api.mms.service_shapes import (
    RegenerateKeyRequest,
    ServiceCreateRequest,
    ServiceUpdateRequest,
    deployment_json,
    service_json,
)
from modelyard.domain.auth import Role
from modelyard.domain.errors import Invalid
from modelyard.domain.webservices import Deployment
from modelyard.services import webservice_data
from modelyard.services import webservices as service_api
from modelyard.services.webservices import ServiceView
from modelyard.store.paging import Page

_FILTERS = {
    "serviceName": "name",
    "modelId": "model_id",
    "modelName": "model_name",
    "manifestId": "manifest_id",
    "manifestName": "manifest_name",
    "imageId": "image_id",
    "computeResourceId": "compute_resource_id",
}


def build_router(family: MmsFamily) -> APIRouter:
    router = family_router(family)

    def to_json(request: Request, view: ServiceView) -> dict[str, object]:
        ctx = request.app.state.context
        status = ctx.compute.status(view.service.id) if ctx.compute is not None else None
        return service_json(
            view,
            service_api.scoring_uri(ctx, view.service),
            resource_uri(request, family, "models"),
            build_log_uri(request, family, view.image.image.id),
            status,
        )

    def accepted(request: Request, view: ServiceView) -> JSONResponse:
        request.app.state.workers.wake()
        return JSONResponse(
            to_json(request, view),
            202,
            headers={
                "Operation-Location": resource_uri(
                    request, family, "operations", view.operation.id
                ),
                "Location": resource_uri(request, family, "services", view.service.id),
            },
        )

    @router.post("/services", status_code=202, summary="Create a realtime service (202)")
    async def create(request: Request, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        spec = (await read_json(request, ServiceCreateRequest)).to_spec()
        view = await run_in_threadpool(service_api.create_service, ctx, account, spec)
        return accepted(request, view)

    @router.get("/services", summary="List services (filters as in the seed)")
    def list_services(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        filters = {
            field: request.query_params.get(param) or None for param, field in _FILTERS.items()
        }

        def fetch(count: int, token: str | None) -> Page[ServiceView]:
            return service_api.list_services(
                ctx, account, filters=filters, count=count, skip_token=token
            )

        return list_response(request, family, fetch, lambda v: to_json(request, v))

    @router.get("/services/{id}", summary="Get a service")
    def get(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        return JSONResponse(to_json(request, service_api.get_service(ctx, account, id)))

    @router.put("/services/{id}", status_code=202, summary="Update a service (rolling, 202)")
    async def update(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        body = await read_json(request, ServiceUpdateRequest)
        view = await run_in_threadpool(
            lambda: service_api.update_service(
                ctx,
                account,
                id,
                body.changes(),
                image_id=body.imageId,
                manifest_id=body.manifestId,
            )
        )
        return accepted(request, view)

    @router.delete("/services/{id}", summary="Delete a service (200; 204 when already gone)")
    async def delete(request: Request, id: str, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        existed = await run_in_threadpool(service_api.delete_service, ctx, account, id)
        return Response(status_code=200 if existed else 204)

    @router.get("/services/{id}/keys", summary="The service's two keys")
    def keys(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        primary, secondary = service_api.get_keys(ctx, account, id)
        return JSONResponse({"primaryKey": primary, "secondaryKey": secondary})

    @router.post("/services/{id}/regenerateKeys", summary="Replace one key (old stops at once)")
    async def regenerate(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        body = await read_json(request, RegenerateKeyRequest)
        primary, secondary = await run_in_threadpool(
            service_api.regenerate_key, ctx, account, id, body.keyType
        )
        return JSONResponse({"primaryKey": primary, "secondaryKey": secondary})

    @router.get("/services/{id}/logs", summary="Replica and deployment logs (text)")
    def logs(request: Request, id: str, ctx: Context, caller: Caller) -> PlainTextResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        tail = _int(request.query_params.get("tail", "200"), "tail")
        text = webservice_data.read_logs(ctx, account, id, tail)
        return PlainTextResponse(text)

    @router.get("/services/{id}/collectedData", summary="Collected requests (JSON lines)")
    def collected(request: Request, id: str, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        hour = request.query_params.get("hour")
        data = webservice_data.read_collected(ctx, account, id, hour)
        return Response(data, media_type="application/x-ndjson")

    @router.get("/deployments", summary="Deployments (filter: serviceId)")
    def list_deployments(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        service_id = request.query_params.get("serviceId") or None

        def fetch(count: int, token: str | None) -> Page[Deployment]:
            return webservice_data.list_deployments(
                ctx, account, service_id=service_id, count=count, skip_token=token
            )

        return list_response(request, family, fetch, deployment_json)

    @router.get("/deployments/{id}", summary="Get a deployment")
    def get_deployment(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        return JSONResponse(deployment_json(webservice_data.get_deployment(ctx, account, id)))

    return router


def _int(raw: str, field: str) -> int:
    if not raw.isdigit():
        raise Invalid(f"{field} must be a whole number", target=field)
    return int(raw)
