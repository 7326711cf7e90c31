"""The 2017-06 hosting-account routes: the same resources, older request shapes.

Routers are shared with the account API (`modelyard.api.mms`) and parameterised by
`HOSTING_ACCOUNTS`: a JSON array for lists, 201 on model registration, manifests
without a name, images with `registryInfo`.
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.mms import build_routers as _build_mms_routers
from modelyard.api.mms.family import HOSTING_ACCOUNTS


def build_routers() -> list[APIRouter]:
    return _build_mms_routers(HOSTING_ACCOUNTS)
