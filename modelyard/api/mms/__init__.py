"""The Model Management API: routers shared by both route families.

`build_routers(family)` builds the account API (`ACCOUNTS`) or the 2017-06
hosting-account API (`HOSTING_ACCOUNTS`) from the same route code.
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.mms.family import ACCOUNTS, MmsFamily


def build_routers(family: MmsFamily = ACCOUNTS) -> list[APIRouter]:
    from modelyard.api.mms import images, manifests, models, operations, webservices

    return [
        models.build_router(family),
        manifests.build_router(family),
        images.build_router(family),
        operations.build_router(family),
        webservices.build_router(family),
    ]
