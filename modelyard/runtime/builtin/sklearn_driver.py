"""Built-in driver for scikit-learn models saved with joblib or pickle.

Request: `{"data": [[feature, ...], ...]}` (or a bare list of rows); response: the
model's `predict` of those rows as a JSON list. `run_batch` stacks the rows of every
request in a batch into one `predict` call and splits the answer back: one call
over 32 requests costs little more than one over a single request, which is where
batching's throughput comes from.
"""

from __future__ import annotations

import importlib
import logging
import pickle
from pathlib import Path
from typing import Any

from modelyard.runtime.builtin._common import (
    find_model_file,
    model_dir,
    parse_rows,
    score_each,
    split_lengths,
)

__all__ = ["MODEL_SUFFIXES", "SklearnDriver"]

MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib")
_log = logging.getLogger("modelyard.runtime")


class SklearnDriver:
    """Loads the first pickle/joblib file under AZUREML_MODEL_DIR and predicts with it."""

    def __init__(self) -> None:
        self.model: Any = None
        self.input_sample: Any = None
        self.output_sample: Any = None
        self._numpy: Any = None

    def init(self) -> None:
        self._numpy = importlib.import_module("numpy")
        path = find_model_file(model_dir(), MODEL_SUFFIXES)
        self.model = _load(path)
        _log.info("loaded scikit-learn model %s from %s", type(self.model).__name__, path)
        features = getattr(self.model, "n_features_in_", None)
        if isinstance(features, int) and features > 0:
            rows = [[0.0] * features]
            self.input_sample = {"data": rows}
            try:
                self.output_sample = self._predict(self._numpy.asarray(rows))
            except Exception:  # a sample is a nicety; a model that rejects zeros is fine
                self.output_sample = None

    def run(self, raw_body: str) -> Any:
        return self._predict(self._numpy.asarray(parse_rows(raw_body)))

    def run_batch(self, raw_bodies: list[str]) -> list[Any]:
        """One `predict` for every request's rows; per request if they cannot be stacked."""
        if len(raw_bodies) == 1:  # no company: skip the stacking
            return score_each(self.run, raw_bodies)
        numpy = self._numpy
        results: list[Any] = [None] * len(raw_bodies)
        parsed: list[tuple[int, Any]] = []
        for index, raw in enumerate(raw_bodies):
            try:
                parsed.append((index, numpy.asarray(parse_rows(raw))))
            except Exception as exc:
                results[index] = exc
        if not parsed:
            return results
        try:
            if any(rows.ndim != 2 for _, rows in parsed):
                raise ValueError("not every request holds a 2-D list of rows")
            predictions = self.model.predict(numpy.concatenate([rows for _, rows in parsed]))
            bounds = split_lengths([len(rows) for _, rows in parsed])
            for (index, _), (start, stop) in zip(parsed, bounds, strict=True):
                results[index] = predictions[start:stop].tolist()
        except Exception:
            # One malformed request must not fail the others: score them one by one.
            scored = score_each(self.run, [raw_bodies[index] for index, _ in parsed])
            for (index, _), result in zip(parsed, scored, strict=True):
                results[index] = result
        return results

    def _predict(self, rows: Any) -> Any:
        return self.model.predict(rows).tolist()


def _load(path: Path) -> Any:
    """joblib.load (what scikit-learn recommends), else plain pickle."""
    try:
        joblib: Any = importlib.import_module("joblib")
    except ImportError:
        joblib = None
    if joblib is not None:
        try:
            return joblib.load(path)
        except Exception as exc:
            _log.info("joblib could not load %s (%s); trying pickle", path, exc)
    with path.open("rb") as file:
        return pickle.load(file)  # noqa: S301 - the model's owner registered this file
