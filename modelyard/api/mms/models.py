"""Model registry routes, built once per MMS route family."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import (
    account_from,
    family_router,
    list_response,
    read_json,
    resource_uri,
)
from modelyard.api.mms.family import MmsFamily
from modelyard.api.mms.shapes import ModelRequest, model_json, upload_json
from modelyard.domain.auth import Role
from modelyard.domain.models import Model
from modelyard.services import models as model_service
from modelyard.services import uploads as upload_service
from modelyard.store.paging import Page


def build_router(family: MmsFamily) -> APIRouter:
    router = family_router(family)

    def model_uri(request: Request, model: Model) -> str:
        return resource_uri(request, family, "models", model.id)

    @router.post(
        "/models",
        status_code=family.register_status,
        summary="Register a model",
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": ModelRequest.model_json_schema()}},
                "required": True,
            }
        },
    )
    async def register(request: Request, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        spec = (await read_json(request, ModelRequest)).to_spec()
        model = await run_in_threadpool(model_service.register_model, ctx, account, spec)
        return JSONResponse(model_json(model, model_uri(request, model)), family.register_status)

    @router.get("/models", summary="List models (filters: name, tag; paged)")
    def list_models(request: Request, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.READER, account)
        name = request.query_params.get("name") or None
        tag = request.query_params.get("tag") or None

        def fetch(count: int, token: str | None) -> Page[Model]:
            return model_service.list_models(
                ctx, account, name=name, tag=tag, count=count, skip_token=token
            )

        return list_response(request, family, fetch, lambda m: model_json(m, model_uri(request, m)))

    @router.get("/models/{id}", summary="Get a model by id")
    def get(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        model = model_service.get_model(ctx, account, id)
        return JSONResponse(model_json(model, model_uri(request, model)))

    @router.get("/models/{id}/content", summary="Download the model's stored artifact")
    def content(request: Request, id: str, ctx: Context, caller: Caller) -> FileResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        model, path = model_service.model_content_path(ctx, account, id)
        return FileResponse(
            path,
            media_type=model.mime_type,
            filename=model.file_name or f"{model.name}-{model.version}",
            headers={"ETag": f'"{model.sha256}"', "x-ms-content-sha256": model.sha256},
        )

    @router.delete("/models/{id}", summary="Delete a model (409 while a manifest uses it)")
    def delete(request: Request, id: str, ctx: Context, caller: Caller) -> Response:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        model_service.delete_model(ctx, account, id)
        return Response(status_code=200)

    @router.post(
        "/uploads",
        status_code=201,
        summary="Stream a file to the server; register it with url upload://<id>",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                "required": True,
            }
        },
    )
    async def upload(request: Request, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        file_name = request.query_params.get("fileName") or "upload"
        writer = upload_service.open_upload(ctx)
        try:
            async for chunk in request.stream():
                writer.write(chunk)
            record = await run_in_threadpool(
                upload_service.finish_upload, ctx, account, writer, file_name
            )
        finally:
            writer.abort()
        return JSONResponse(upload_json(record), 201)

    return router
