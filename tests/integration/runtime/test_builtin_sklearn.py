"""The built-in scikit-learn driver: a joblib-saved model served without a driver program."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.domain.errors import Invalid
from modelyard.runtime.builtin.sklearn_driver import SklearnDriver
from tests.integration.runtime.replicas import Replica, start_replica, write_context

# Untyped libraries, imported so that mypy needs no stubs (nor an override) for them.
joblib: Any = importlib.import_module("joblib")
LogisticRegression: Any = importlib.import_module("sklearn.linear_model").LogisticRegression

CLIENTS = 16


def trained_model() -> Any:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(60, 3))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    return LogisticRegression().fit(features, labels)


@pytest.fixture(scope="module")
def model() -> Any:
    return trained_model()


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory, model: Any) -> Iterator[Replica]:
    root = tmp_path_factory.mktemp("sklearn")
    joblib.dump(model, root / "model.pkl")
    context = write_context(
        root / "ctx",
        driver=None,
        builtin="sklearn",
        model_files={"model.pkl": (root / "model.pkl").read_bytes()},
    )
    replica = start_replica(context, root / "logs", env={"MODELYARD_BATCH_MAX_WAIT_MS": "5"})
    yield replica
    replica.terminate()


def metric(text: str, pattern: str) -> float:
    match = re.search(pattern + r" ([0-9.e+]+)", text)
    assert match is not None, pattern
    return float(match.group(1))


def test_scores_rows_and_answers_concurrent_requests_in_batches(
    replica: Replica, model: Any
) -> None:
    rows = np.random.default_rng(1).normal(size=(CLIENTS, 3))
    expected = model.predict(rows).tolist()

    single = httpx.post(f"{replica.url}/score", json={"data": rows[:4].tolist()})
    assert single.status_code == 200
    assert single.json() == expected[:4]
    bare = httpx.post(f"{replica.url}/score", json=rows[:2].tolist())
    assert bare.json() == expected[:2]

    together = threading.Barrier(CLIENTS)

    def score(index: int) -> Any:
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            client.get("/")
            together.wait()
            response = client.post("/score", json={"data": [rows[index].tolist()]})
            assert response.status_code == 200
            return response.json()

    for _ in range(3):
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(score, range(CLIENTS)))
        assert answers == [[label] for label in expected]

    text = httpx.get(f"{replica.url}/metrics").text
    batches = metric(text, r"modelyard_batch_size_count")
    single_item_batches = metric(text, r'modelyard_batch_size_bucket\{le="1.0"\}')
    assert batches > single_item_batches, "no batch held more than one request"


def test_a_malformed_request_fails_alone_and_swagger_shows_the_feature_count(
    replica: Replica,
) -> None:
    wrong = httpx.post(f"{replica.url}/score", json={"data": [[1.0, 2.0]]})
    assert wrong.status_code == 500
    assert "features" in wrong.json()["error"]
    assert httpx.post(f"{replica.url}/score", json={"data": [[0, 0, 0]]}).status_code == 200
    unreadable = httpx.post(f"{replica.url}/score", content=b"{not json")
    assert unreadable.status_code == 400
    assert "not JSON" in unreadable.json()["error"]

    document = httpx.get(f"{replica.url}/swagger.json").json()
    service_input = document["definitions"]["ServiceInput"]
    assert service_input["example"] == {"data": [[0.0, 0.0, 0.0]]}
    assert service_input["properties"]["data"]["items"] == {
        "type": "array",
        "items": {"type": "number"},
    }
    assert document["definitions"]["ServiceOutput"]["items"] == {"type": "integer"}


class CountingModel:
    """Wraps a model to count predict calls."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def predict(self, rows: Any) -> Any:
        self.calls += 1
        return self.model.predict(rows)


def test_run_batch_predicts_once_for_the_batch_and_fails_bad_requests_alone(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joblib.dump(model, tmp_path / "model.joblib")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    driver = SklearnDriver()
    driver.init()
    driver.model = counting = CountingModel(model)

    good = ['{"data": [[0, 0, 0], [1, 1, 1]]}', "[[2, 2, 2]]"]
    assert driver.run_batch(good) == [
        model.predict([[0, 0, 0], [1, 1, 1]]).tolist(),
        model.predict([[2, 2, 2]]).tolist(),
    ]
    assert counting.calls == 1

    mixed = driver.run_batch([good[0], "not json", '{"data": [[1, 2]]}', good[1]])
    assert mixed[0] == model.predict([[0, 0, 0], [1, 1, 1]]).tolist()
    assert isinstance(mixed[1], Invalid)  # answered 400
    assert isinstance(mixed[2], ValueError)  # scikit-learn's own complaint, answered 500
    assert mixed[3] == model.predict([[2, 2, 2]]).tolist()
