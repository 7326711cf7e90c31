"""Manifest routes, built once per MMS route family."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import (
    account_from,
    family_router,
    list_response,
    read_json,
)
from modelyard.api.mms.family import MmsFamily
from modelyard.api.mms.image_shapes import ManifestRequest, manifest_json
from modelyard.domain.auth import Role
from modelyard.domain.manifests import Manifest
from modelyard.services import manifests as manifest_service
from modelyard.store.paging import Page


def build_router(family: MmsFamily) -> APIRouter:
    router = family_router(family)

    @router.post(
        "/manifests",
        summary="Register a manifest (fetches every asset; 200)",
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": ManifestRequest.model_json_schema()}},
                "required": True,
            }
        },
    )
    async def create(request: Request, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        body = await read_json(request, ManifestRequest)
        # The 2017-06 body has no name; the account API requires one.
        spec = body.to_spec(default_name="manifest" if family.list_is_bare_array else None)
        manifest = await run_in_threadpool(manifest_service.create_manifest, ctx, account, spec)
        return JSONResponse(manifest_json(manifest))

    @router.get("/manifests", summary="List manifests (filters: modelId, manifestName)")
    def list_manifests(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        model_id = request.query_params.get("modelId") or None
        name = request.query_params.get("manifestName") or None

        def fetch(count: int, token: str | None) -> Page[Manifest]:
            return manifest_service.list_manifests(
                ctx, account, model_id=model_id, name=name, count=count, skip_token=token
            )

        return list_response(request, family, fetch, manifest_json)

    @router.get("/manifests/{id}", summary="Get a manifest by id")
    def get(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        return JSONResponse(manifest_json(manifest_service.get_manifest(ctx, account, id)))

    return router
