"""Built-in drivers: known kinds, their requirements, and reading request rows."""

from __future__ import annotations

import pytest

from modelyard.builder.requirements import RUNTIME_REQUIREMENTS, builtin_requirements
from modelyard.domain.errors import Invalid
from modelyard.runtime.builtin._common import parse_rows, split_lengths
from modelyard.runtime.driver import BUILTIN_DRIVERS, load_builtin


def test_every_built_in_driver_names_the_packages_its_image_needs() -> None:
    assert builtin_requirements("sklearn") == ("scikit-learn", "joblib")
    assert builtin_requirements("onnx") == ("onnxruntime", "numpy")
    assert builtin_requirements("mlflow") == ("mlflow",)
    assert all(builtin_requirements(kind) for kind in BUILTIN_DRIVERS)
    assert builtin_requirements("tensorflow") == ()


def test_every_image_gets_the_runtimes_metrics_library() -> None:
    assert any(line.startswith("prometheus-client") for line in RUNTIME_REQUIREMENTS)


def test_an_unknown_built_in_driver_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(Invalid) as caught:
        load_builtin("tensorflow")
    assert "sklearn" in caught.value.message


@pytest.mark.parametrize("kind", sorted(BUILTIN_DRIVERS))
def test_built_in_drivers_load_without_their_model_library(kind: str) -> None:
    driver = load_builtin(kind)  # the library is imported by init(), not before
    assert driver.name == f"builtin:{kind}"


def test_rows_come_from_data_or_a_bare_list() -> None:
    assert parse_rows('{"data": [[1, 2]]}') == [[1, 2]]
    assert parse_rows("[[1, 2]]") == [[1, 2]]
    with pytest.raises(Invalid):
        parse_rows('{"rows": []}')


def test_split_lengths_gives_each_request_its_slice() -> None:
    assert split_lengths([2, 1, 3]) == [(0, 2), (2, 3), (3, 6)]
