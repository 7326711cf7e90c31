"""model_path(): a driver finds a registered model's folder from the image's models list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.domain.errors import Invalid, NotFound
from modelyard.runtime import model_path
from modelyard.runtime.models import IMAGE_DIR_ENV


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models = [
        {"id": "a1", "name": "Churn", "version": 1, "path": "models/Churn/1"},
        {"id": "a2", "name": "Churn", "version": 2, "path": "models/Churn/2"},
        {"id": "b1", "name": "other", "version": 1, "path": "models/other/1"},
    ]
    document = {"driver": "driver/score.py", "modelDir": "models", "models": models}
    (tmp_path / "image.json").write_text(json.dumps(document))
    monkeypatch.setenv(IMAGE_DIR_ENV, str(tmp_path))
    return tmp_path.resolve()


def test_the_highest_version_by_default(context: Path) -> None:
    assert model_path("Churn") == context / "models" / "Churn" / "2"


def test_a_named_version(context: Path) -> None:
    assert model_path("Churn", 1) == context / "models" / "Churn" / "1"


def test_names_match_ignoring_case_when_nothing_matches_exactly(context: Path) -> None:
    assert model_path("churn", 2) == context / "models" / "Churn" / "2"


def test_an_unknown_model_or_version_is_not_found_naming_what_the_image_holds(
    context: Path,
) -> None:
    with pytest.raises(NotFound) as caught:
        model_path("Churn", 3)
    assert "Churn:1" in caught.value.message
    with pytest.raises(NotFound):
        model_path("missing")


def test_outside_a_replica_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_DIR_ENV, raising=False)
    with pytest.raises(Invalid):
        model_path("Churn")
