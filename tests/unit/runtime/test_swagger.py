"""swagger.json: JSON Schemas inferred from samples, declared schemas preferred."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from modelyard.runtime.driver import Driver
from modelyard.runtime.factory import driver_swagger
from modelyard.runtime.swagger import infer_schema, swagger_document


class FakeArray:
    """Stands in for a numpy array: anything with tolist()."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def tolist(self) -> Any:
        return self.value


def test_scalars_map_to_their_json_types() -> None:
    assert infer_schema(1) == {"type": "integer"}
    assert infer_schema(1.5) == {"type": "number"}
    assert infer_schema("a") == {"type": "string"}
    assert infer_schema(True) == {"type": "boolean"}
    assert infer_schema(None) == {"type": "null"}


def test_objects_list_their_properties_and_arrays_take_the_first_items_type() -> None:
    sample = {"data": [[1.0, 2.0]], "id": "x", "flags": []}
    assert infer_schema(sample) == {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "id": {"type": "string"},
            "flags": {"type": "array", "items": {}},
        },
    }


def test_values_with_tolist_are_converted_first() -> None:
    assert infer_schema(FakeArray([[1, 2]])) == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "integer"}},
    }


def test_the_document_describes_score_with_the_given_schemas() -> None:
    document = swagger_document(
        title="svc",
        input_schema={"type": "array"},
        output_schema=None,
        input_example=[1],
        secured=False,
    )
    assert document["swagger"] == "2.0"
    assert document["info"]["title"] == "svc"
    post = document["paths"]["/score"]["post"]
    assert post["parameters"][0]["schema"] == {"$ref": "#/definitions/ServiceInput"}
    assert document["definitions"]["ServiceInput"] == {"type": "array", "example": [1]}
    assert document["definitions"]["ServiceOutput"] == {"type": "object"}
    assert "security" not in post
    assert "securityDefinitions" not in document


def test_a_secured_service_requires_the_bearer_key_on_score() -> None:
    document = swagger_document(title="s", input_schema=None, output_schema=None, secured=True)
    assert document["securityDefinitions"]["Bearer"]["name"] == "Authorization"
    assert document["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]


def test_a_driver_declared_schema_wins_over_its_sample() -> None:
    target = SimpleNamespace(
        run=lambda raw: raw,
        input_schema={"type": "string"},
        input_sample=[1],
        output_sample={"y": 1},
    )
    document = driver_swagger(Driver(target, "t"), "t", secured=False)
    assert document["definitions"]["ServiceInput"]["type"] == "string"
    assert document["definitions"]["ServiceOutput"] == {
        "type": "object",
        "properties": {"y": {"type": "integer"}},
        "example": {"y": 1},
    }


def test_a_driver_without_declarations_gets_generic_objects() -> None:
    document = driver_swagger(Driver(SimpleNamespace(run=len), "t"), "t", secured=False)
    assert document["definitions"]["ServiceInput"] == {"type": "object"}
    assert document["definitions"]["ServiceOutput"] == {"type": "object"}
