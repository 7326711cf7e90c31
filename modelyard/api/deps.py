"""FastAPI dependencies as `Annotated` aliases: the service context and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelyard.domain.auth import Principal
from modelyard.services.context import ServiceContext
from modelyard.services.tokens import authenticate


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.context
    return ctx


def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    ctx = get_context(request)
    return authenticate(ctx.db, token, ctx.token_cache)


Context = Annotated[ServiceContext, Depends(get_context)]
Caller = Annotated[Principal, Depends(get_principal)]
