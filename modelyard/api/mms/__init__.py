"""The Model Management account API (`.../accounts/{a}`, api-version 2017-09-01-preview)."""

from __future__ import annotations

from fastapi import APIRouter


def build_routers() -> list[APIRouter]:
    from modelyard.api.mms import models
    from modelyard.api.mms.family import ACCOUNTS

    return [models.build_router(ACCOUNTS)]
