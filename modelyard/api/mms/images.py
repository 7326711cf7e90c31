"""Image routes, built once per MMS route family."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
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
from modelyard.api.mms.image_shapes import ImageRequest, image_json
from modelyard.domain.auth import Role
from modelyard.domain.errors import Invalid
from modelyard.services import images as image_service
from modelyard.services import manifests as manifest_service
from modelyard.services.images import ImageView
from modelyard.store.paging import Page


def build_router(family: MmsFamily) -> APIRouter:
    router = family_router(family)

    def to_json(request: Request, view: ImageView) -> dict[str, object]:
        return image_json(view, build_log_uri(request, family, view.image.id))

    @router.post(
        "/images",
        status_code=202,
        summary="Build an image from a manifest (202 + Operation-Location)",
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": ImageRequest.model_json_schema()}},
                "required": True,
            }
        },
    )
    async def create(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        body = await read_json(request, ImageRequest)
        default_name = ""
        if not body.name:
            try:
                manifest = manifest_service.get_manifest(ctx, account, body.manifestId)
            except Exception as exc:
                raise Invalid(
                    f"manifestId: no manifest '{body.manifestId}' in account {account.scope_key}",
                    target="manifestId",
                    code="ManifestNotFound",
                ) from exc
            default_name = manifest.name
        spec = body.to_spec(default_name)
        view = await run_in_threadpool(image_service.create_image, ctx, account, spec)
        request.app.state.workers.wake()
        location = resource_uri(request, family, "operations", view.operation.id)
        return JSONResponse(
            to_json(request, view),
            202,
            headers={
                "Operation-Location": location,
                "Location": resource_uri(request, family, "images", view.image.id),
            },
        )

    @router.get("/images", summary="List images (filters: manifestId, manifestName)")
    def list_images(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        manifest_id = request.query_params.get("manifestId") or None
        manifest_name = request.query_params.get("manifestName") or None

        def fetch(count: int, token: str | None) -> Page[ImageView]:
            return image_service.list_images(
                ctx,
                account,
                manifest_id=manifest_id,
                manifest_name=manifest_name,
                count=count,
                skip_token=token,
            )

        return list_response(request, family, fetch, lambda v: to_json(request, v))

    @router.get("/images/{id}", summary="Get an image (embeds its manifest)")
    def get(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        return JSONResponse(to_json(request, image_service.get_image(ctx, account, id)))

    @router.get("/images/{id}/buildLog", summary="The build log, from byte `offset` on")
    def build_log(request: Request, id: str, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        raw_offset = request.query_params.get("offset", "0")
        if not raw_offset.isdigit():
            raise Invalid("offset must be a whole number of bytes", target="offset")
        data, next_offset, view = image_service.read_build_log(ctx, account, id, int(raw_offset))
        return Response(
            data,
            media_type="text/plain; charset=utf-8",
            headers={
                "x-ms-log-next-offset": str(next_offset),
                "x-ms-operation-state": view.operation.state.value,
            },
        )

    return router
