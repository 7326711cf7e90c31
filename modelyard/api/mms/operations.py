"""Operation routes: the seed's AsyncOperationStatus, and cancellation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import (
    account_from,
    build_log_uri,
    family_router,
    resource_uri,
)
from modelyard.api.mms.family import MmsFamily
from modelyard.api.mms.image_shapes import operation_json
from modelyard.domain.auth import Role
from modelyard.domain.operations import Operation, OperationKind
from modelyard.services import operations as operation_service


def build_router(family: MmsFamily) -> APIRouter:
    router = family_router(family)

    def to_json(request: Request, operation: Operation) -> dict[str, object]:
        uri = resource_uri(request, family, operation.resource_type, operation.resource_id)
        path = "/" + uri.split("/", 3)[3]
        log_uri = (
            build_log_uri(request, family, operation.resource_id)
            if operation.kind is OperationKind.IMAGE
            else None
        )
        return operation_json(operation, path, log_uri)

    @router.get("/operations/{id}", summary="Status of an async operation")
    def get(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.READER, account)
        return JSONResponse(to_json(request, operation_service.get_operation(ctx, account, id)))

    @router.post("/operations/{id}/cancel", status_code=202, summary="Cancel an operation")
    def cancel(request: Request, id: str, ctx: Context, caller: Caller) -> JSONResponse:
        account = account_from(request)
        caller.require(Role.CONTRIBUTOR, account)
        operation = operation_service.cancel_operation(ctx, account, id)
        return JSONResponse(to_json(request, operation), 202)

    return router
