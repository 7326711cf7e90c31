"""The built-in MLflow driver, when mlflow is installed (it is not in the dev environment)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import write_context


def test_scores_a_pyfunc_model_in_split_orient_needs_mlflow(
    replicas: StartReplica, tmp_path: Path
) -> None:
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    linear_model: Any = importlib.import_module("sklearn.linear_model")

    model = linear_model.LinearRegression().fit(
        [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 1.0, 2.0]
    )
    mlflow_sklearn.save_model(model, str(tmp_path / "ctx" / "models" / "model" / "1" / "m"))
    replica = replicas(write_context(tmp_path / "ctx", driver=None, builtin="mlflow"))

    response = httpx.post(
        f"{replica.url}/score", json={"columns": ["a", "b"], "data": [[1.0, 1.0]]}
    )
    assert response.status_code == 200
    assert response.json() == pytest.approx([3.0])
