"""Request plumbing shared by every MMS router: api-version, account, body, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from modelyard.api.mms.errors import UnsupportedMediaType, describe_validation
from modelyard.api.mms.family import MmsFamily
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, PayloadTooLarge
from modelyard.store.paging import Page

ShapeT = TypeVar("ShapeT", bound=BaseModel)
T = TypeVar("T")

MAX_JSON_BODY = 1024 * 1024
MAX_PAGE = 1000


def api_version_checker(family: MmsFamily) -> Callable[[Request], None]:
    supported = ", ".join(sorted(family.api_versions))

    def check(request: Request) -> None:
        version = request.query_params.get("api-version")
        if not version:
            raise Invalid(
                f"the api-version query parameter is required; supported: {supported}",
                code="MissingApiVersionParameter",
                target="api-version",
            )
        if version not in family.api_versions:
            raise Invalid(
                f"api-version '{version}' is not supported here; supported: {supported}",
                code="InvalidApiVersionParameter",
                target="api-version",
            )

    return check


def account_from(request: Request) -> AccountRef:
    params = request.path_params
    return AccountRef.parse(
        params["subscriptionId"], params["resourceGroupName"], params["accountName"]
    )


async def read_json(request: Request, shape: type[ShapeT]) -> ShapeT:
    """Parse and validate a JSON body: 415, 413 and 400 with the field named."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got '{content_type or 'none'}')"
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise PayloadTooLarge(f"a JSON body may be at most {MAX_JSON_BODY} bytes")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}", code="InvalidJson") from None
    if not isinstance(data, dict):
        raise Invalid("the request body must be a JSON object", code="InvalidJson")
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation(exc.errors())) from None


def page_size(request: Request, default: int) -> int:
    raw = request.query_params.get("count")
    if raw is None or raw == "":
        return default
    try:
        count = int(raw)
    except ValueError:
        raise Invalid(f"count '{raw}' is not a whole number", target="count") from None
    if not 1 <= count <= MAX_PAGE:
        raise Invalid(f"count must be between 1 and {MAX_PAGE}", target="count")
    return count


def absolute_url(request: Request, public_url: str | None, **params: str) -> str:
    """This request's URL with `params` replaced, as an absolute URI clients can follow."""
    url = request.url.include_query_params(**params)
    if public_url:
        base = public_url.rstrip("/")
        return base + url.path + (f"?{url.query}" if url.query else "")
    return str(url)


def base_url(request: Request, public_url: str | None) -> str:
    return (public_url or str(request.base_url)).rstrip("/")


def list_response(
    request: Request,
    family: MmsFamily,
    fetch: Callable[[int, str | None], Page[T]],
    to_json: Callable[[T], dict[str, Any]],
) -> Response:
    """One list answer for either family, paging with `count` and `$skipToken`.

    Account API: `{"value": [...], "nextLink": "<absolute URI>"}` with nextLink left out
    on the last page (the 2017 Azure CLI loops forever on `"nextLink": null`).
    Hosting-account API: the bare JSON array its seed shows — everything when no
    `count` is given, else one page with a `Link: <...>; rel="next"` header.
    """
    settings = request.app.state.settings
    if family.list_is_bare_array and "count" not in request.query_params:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = fetch(MAX_PAGE, token)
            items.extend(to_json(item) for item in page.items)
            if page.next_token is None:
                return JSONResponse(items)
            token = page.next_token
    page = fetch(
        page_size(request, settings.page_size_default), request.query_params.get("$skipToken")
    )
    values = [to_json(item) for item in page.items]
    next_link = (
        absolute_url(request, settings.public_url, **{"$skipToken": page.next_token})
        if page.next_token
        else None
    )
    if family.list_is_bare_array:
        headers = {"Link": f'<{next_link}>; rel="next"'} if next_link else None
        return JSONResponse(values, headers=headers)
    body: dict[str, Any] = {"value": values}
    if next_link:
        body["nextLink"] = next_link
    return JSONResponse(body)


def resource_uri(request: Request, family: MmsFamily, *parts: str) -> str:
    """Absolute URI of a resource in this request's account, e.g. `.../images/<id>`."""
    public_url = request.app.state.settings.public_url
    params = request.path_params
    account_path = (
        f"/api/subscriptions/{params['subscriptionId']}/resourceGroups/"
        f"{params['resourceGroupName']}/{family.segment}/{params['accountName']}"
    )
    return base_url(request, public_url) + account_path + "".join(f"/{p}" for p in parts)


def build_log_uri(request: Request, family: MmsFamily, image_id: str) -> str:
    """Followable as is: it carries the api-version its route requires."""
    uri = resource_uri(request, family, "images", image_id, "buildLog")
    return f"{uri}?api-version={family.api_version}"


def family_router(family: MmsFamily) -> APIRouter:
    """A router under the family's account prefix that checks its api-version first."""
    return APIRouter(
        prefix=family.prefix,
        tags=[family.tag],
        dependencies=[Depends(api_version_checker(family))],
    )
