"""The 2017-06 hosting-account routes: the same resources, older request shapes.

Routers are shared with the account API (`modelyard.api.mms`) and parameterised by
`HOSTING_ACCOUNTS`; request shapes that differ (kubeConfig, registryInfo) get their
translation here as those resources arrive.
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.mms import models
from modelyard.api.mms.family import HOSTING_ACCOUNTS


def build_routers() -> list[APIRouter]:
    return [models.build_router(HOSTING_ACCOUNTS)]
