"""`GET /swagger.json`: an OpenAPI 2.0 document for the service, as Azure ML served one.

Clients (and the portal) generate code from it, so `POST /score` carries real input
and output schemas whenever the driver can say what they are: declared outright as
JSON Schema (`input_schema` / `output_schema`), or inferred from example values
(`input_sample` / `output_sample`). Without either, the schema is a generic object.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["infer_schema", "swagger_document"]

_GENERIC: dict[str, Any] = {"type": "object"}


def infer_schema(sample: Any) -> dict[str, Any]:
    """A JSON Schema that `sample` matches, as narrow as one example allows.

    Objects list their properties; arrays take their items' schema from the first
    item; ints are `integer`, floats `number`. Values with a
    `tolist()` (numpy arrays and scalars) or a `to_dict(orient=...)` (pandas frames,
    as records) are converted first, so drivers can declare samples in their own types.
    """
    sample = _plain(sample)
    if sample is None:
        return {"type": "null"}
    if isinstance(sample, bool):
        return {"type": "boolean"}
    if isinstance(sample, int):
        return {"type": "integer"}
    if isinstance(sample, float):
        return {"type": "number"}
    if isinstance(sample, str):
        return {"type": "string"}
    if isinstance(sample, dict):
        return {
            "type": "object",
            "properties": {str(key): infer_schema(value) for key, value in sample.items()},
        }
    if isinstance(sample, list | tuple):
        return {"type": "array", "items": infer_schema(sample[0]) if sample else {}}
    return {}


def swagger_document(
    *,
    title: str,
    input_schema: dict[str, Any] | None,
    output_schema: dict[str, Any] | None,
    input_example: Any = None,
    output_example: Any = None,
    secured: bool,
) -> dict[str, Any]:
    """The whole document; `secured` adds the Bearer key requirement to `/score`."""
    service_input = dict(input_schema or _GENERIC)
    service_output = dict(output_schema or _GENERIC)
    if input_example is not None and _jsonable(input_example):
        service_input.setdefault("example", _plain_deep(input_example))
    if output_example is not None and _jsonable(output_example):
        service_output.setdefault("example", _plain_deep(output_example))
    score: dict[str, Any] = {
        "description": "Run the model on the request body and return its result.",
        "operationId": "RunMLService",
        "parameters": [
            {
                "name": "serviceInputPayload",
                "in": "body",
                "description": "The input payload for the model.",
                "required": True,
                "schema": {"$ref": "#/definitions/ServiceInput"},
            }
        ],
        "responses": {
            "200": {"description": "Success", "schema": {"$ref": "#/definitions/ServiceOutput"}},
            "default": {
                "description": "Failed",
                "schema": {"$ref": "#/definitions/ErrorResponse"},
            },
        },
    }
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": title,
            "description": "API specification for a modelyard realtime web service.",
            "version": "1.0",
        },
        "schemes": ["http", "https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": {
            "/": {
                "get": {
                    "description": "Health: 200 once the model is loaded.",
                    "operationId": "ServiceHealthCheck",
                    "responses": {"200": {"description": "Healthy"}},
                }
            },
            "/score": {"post": score},
        },
        "definitions": {
            "ServiceInput": service_input,
            "ServiceOutput": service_output,
            "ErrorResponse": {"type": "object", "properties": {"error": {"type": "string"}}},
        },
    }
    if secured:
        document["securityDefinitions"] = {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "The service key: 'Bearer <key>'.",
            }
        }
        score["security"] = [{"Bearer": []}]
    return document


def _plain(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "columns"):
        return to_dict(orient="records")
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, list | tuple | dict | str):
        return tolist()
    return value


def _plain_deep(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, dict):
        return {str(k): _plain_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_deep(v) for v in value]
    return value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(_plain_deep(value), allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
