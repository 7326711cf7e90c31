"""The built-in ONNX driver: a model built with onnx.helper, run by onnxruntime."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from modelyard.runtime.builtin.onnx_driver import OnnxDriver
from tests.integration.runtime.conftest import StartReplica
from tests.integration.runtime.replicas import write_context


def matmul_model(path: Path) -> None:
    """Y = X @ [1, 2, 3]ᵀ with a dynamic batch axis."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "weights",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [3, 1], [1.0, 2.0, 3.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for every onnxruntime we accept
    onnx.save(model, str(path))


def test_scores_with_the_models_first_input_and_output(
    replicas: StartReplica, tmp_path: Path
) -> None:
    matmul_model(tmp_path / "model.onnx")
    context = write_context(
        tmp_path / "ctx",
        driver=None,
        builtin="onnx",
        model_files={"model.onnx": (tmp_path / "model.onnx").read_bytes()},
    )
    replica = replicas(context)

    response = httpx.post(f"{replica.url}/score", json={"data": [[1, 1, 1], [0, 0, 1]]})
    assert response.status_code == 200
    assert response.json() == [[6.0], [3.0]]

    def score(index: int) -> Any:
        return httpx.post(f"{replica.url}/score", json={"data": [[index, 0, 0]]}).json()

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(score, range(16))) == [[[float(i)]] for i in range(16)]

    document = httpx.get(f"{replica.url}/swagger.json").json()
    assert document["definitions"]["ServiceInput"]["example"] == {"data": [[0.0, 0.0, 0.0]]}
    assert document["definitions"]["ServiceOutput"]["example"] == [[0.0]]


def test_run_batch_runs_the_model_once_and_fails_mismatched_requests_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matmul_model(tmp_path / "model.onnx")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    driver = OnnxDriver()
    driver.init()
    assert driver.dynamic_batch
    assert driver.run_batch(['{"data": [[1, 0, 0]]}', '{"data": [[0, 1, 0], [0, 0, 1]]}']) == [
        [[1.0]],
        [[2.0], [3.0]],
    ]
    mixed = driver.run_batch(['{"data": [[1, 1, 1]]}', '{"data": [[1, 1]]}', "{}"])
    assert mixed[0] == [[6.0]]
    assert isinstance(mixed[1], Exception)
    assert isinstance(mixed[2], Exception)
