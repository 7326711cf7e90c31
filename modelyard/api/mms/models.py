"""Model registry routes, built once per MMS route family."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import (
    absolute_url,
    account_from,
    api_version_checker,
    base_url,
    page_size,
    read_json,
)
from modelyard.api.mms.family import MmsFamily
from modelyard.api.mms.shapes import ModelRequest, model_json, upload_json
from modelyard.domain.auth import Role
from modelyard.domain.models import Model
from modelyard.services import models as model_service
from modelyard.services import uploads as upload_service


def build_router(family: MmsFamily) -> APIRouter:
    router = APIRouter(
        prefix=family.prefix,
        tags=[family.tag],
        dependencies=[Depends(api_version_checker(family))],
    )

    def model_uri(request: Request, model: Model) -> str:
        public_url = request.app.state.settings.public_url
        account_path = request.url.path.split(f"/{family.segment}/", 1)[0]
        account_name = request.path_params["accountName"]
        return (
            f"{base_url(request, public_url)}{account_path}/{family.segment}/{account_name}"
            f"/models/{model.id}"
        )

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
        settings = request.app.state.settings
        if family.list_is_bare_array and "count" not in request.query_params:
            return JSONResponse(_list_everything(ctx, request, account, name, tag))
        count = page_size(request, settings.page_size_default)
        page = model_service.list_models(
            ctx,
            account,
            name=name,
            tag=tag,
            count=count,
            skip_token=request.query_params.get("$skipToken"),
        )
        items = [model_json(m, model_uri(request, m)) for m in page.items]
        next_link = (
            absolute_url(request, settings.public_url, **{"$skipToken": page.next_token})
            if page.next_token
            else None
        )
        if family.list_is_bare_array:
            headers = {"Link": f'<{next_link}>; rel="next"'} if next_link else None
            return JSONResponse(items, headers=headers)
        body: dict[str, Any] = {"value": items}
        if next_link:  # the 2017 Azure CLI loops forever on "nextLink": null
            body["nextLink"] = next_link
        return JSONResponse(body)

    def _list_everything(
        ctx: Any, request: Request, account: Any, name: str | None, tag: str | None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = model_service.list_models(
                ctx, account, name=name, tag=tag, count=1000, skip_token=token
            )
            items.extend(model_json(m, model_uri(request, m)) for m in page.items)
            if page.next_token is None:
                return items
            token = page.next_token

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
