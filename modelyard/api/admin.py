"""modelyard's own administration routes: bearer tokens (Owner only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from modelyard.api.deps import Caller, Context
from modelyard.api.mms.common import read_json
from modelyard.api.mms.shapes import iso
from modelyard.domain.auth import Role, TokenInfo
from modelyard.services import tokens as token_service

router = APIRouter(prefix="/admin", tags=["Administration"])


class TokenRequest(BaseModel):
    name: str = Field(description="A label for the token, 1-64 characters.")
    role: str = Field("Contributor", description="Reader, Contributor or Owner.")
    scopes: list[str] | None = Field(
        None, description="Accounts as subscriptionId/resourceGroup/accountName; none: all."
    )


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "role": info.role.label,
        "scopes": list(info.scopes) if info.scopes is not None else None,
        "createdAt": iso(info.created_at),
        "revokedAt": iso(info.revoked_at) if info.revoked_at else None,
    }


@router.post("/tokens", status_code=201, summary="Create a token (the secret is shown once)")
async def create(request: Request, ctx: Context, caller: Caller) -> JSONResponse:
    caller.require(Role.OWNER)
    body = await read_json(request, TokenRequest)
    scopes = tuple(body.scopes) if body.scopes is not None else None
    info, secret = token_service.create_token(ctx.db, body.name, Role.parse(body.role), scopes)
    return JSONResponse({**token_json(info), "token": secret}, 201)


@router.get("/tokens", summary="List tokens (never their secrets)")
def list_tokens(ctx: Context, caller: Caller) -> JSONResponse:
    caller.require(Role.OWNER)
    return JSONResponse({"value": [token_json(t) for t in token_service.list_tokens(ctx.db)]})


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke(token_id: str, ctx: Context, caller: Caller) -> JSONResponse:
    caller.require(Role.OWNER)
    return JSONResponse(token_json(token_service.revoke_token(ctx.db, token_id, ctx.token_cache)))
