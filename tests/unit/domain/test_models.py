"""The seed's validation rules for registering a model."""

from __future__ import annotations

import pytest

from modelyard.domain.errors import Invalid
from modelyard.domain.models import ModelSpec


def spec(**overrides: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "churn-model",
        "url": "http://example.test/m.pkl",
        "mime_type": "application/octet-stream",
    }
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_a_valid_spec_is_accepted() -> None:
    assert spec(tags=("prod", "v2"), description="é" * 200).name == "churn-model"


@pytest.mark.parametrize("name", ["", "has space", "under_score", "x" * 33, "dot.name"])
def test_names_are_alphanumerics_and_hyphens_up_to_32(name: str) -> None:
    with pytest.raises(Invalid) as caught:
        spec(name=name)
    assert caught.value.target == "name"


def test_a_name_of_exactly_32_characters_is_allowed() -> None:
    assert spec(name="a" * 32).name == "a" * 32


@pytest.mark.parametrize("tag", ["", "with-hyphen", "t" * 31, "ünïcode"])
def test_tags_are_alphanumeric_up_to_30(tag: str) -> None:
    with pytest.raises(Invalid) as caught:
        spec(tags=(tag,))
    assert caught.value.target == "tags"


def test_description_is_at_most_200_unicode_characters() -> None:
    with pytest.raises(Invalid) as caught:
        spec(description="é" * 201)
    assert caught.value.target == "description"


@pytest.mark.parametrize(("field", "target"), [("url", "url"), ("mime_type", "mimeType")])
def test_url_and_mime_type_are_required(field: str, target: str) -> None:
    with pytest.raises(Invalid) as caught:
        spec(**{field: ""})
    assert caught.value.target == target


def test_a_mime_type_must_look_like_a_media_type() -> None:
    with pytest.raises(Invalid):
        spec(mime_type="pickle")
