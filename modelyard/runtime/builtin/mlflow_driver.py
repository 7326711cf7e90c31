"""Built-in driver for MLflow models (any flavour, through `mlflow.pyfunc`).

The model folder is AZUREML_MODEL_DIR when it holds an `MLmodel` file, else the
first folder under it that does. Requests take the shapes MLflow's own scoring
server took:

- `{"columns": [...], "data": [[...], ...]}` (pandas "split" orient, Azure's form),
  also wrapped as `{"dataframe_split": {...}}`;
- `{"dataframe_records": [{...}, ...]}`;
- `{"data": [[...], ...]}` or a bare list of rows: a frame without column names;
- `{"inputs": ...}` / `{"instances": ...}`: tensors, passed as a numpy array.

The prediction comes back as a JSON list (a frame as a list of records).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from modelyard.domain.errors import Invalid, NotFound
from modelyard.runtime.builtin._common import model_dir, parse_json

__all__ = ["MlflowDriver", "find_mlflow_model"]

_log = logging.getLogger("modelyard.runtime")


def find_mlflow_model(root: Path) -> Path:
    """`root` when it holds an MLmodel file, else the first folder under it that does."""
    if (root / "MLmodel").is_file():
        return root
    found = sorted(root.rglob("MLmodel"))
    if not found:
        raise NotFound(f"no MLmodel file under {root}")
    return found[0].parent


class MlflowDriver:
    """Loads the model with `mlflow.pyfunc.load_model` and predicts with it."""

    def __init__(self) -> None:
        self.model: Any = None
        self._pandas: Any = None
        self._numpy: Any = None

    def init(self) -> None:
        pyfunc: Any = importlib.import_module("mlflow.pyfunc")
        self._pandas = importlib.import_module("pandas")
        self._numpy = importlib.import_module("numpy")
        folder = find_mlflow_model(model_dir())
        self.model = pyfunc.load_model(str(folder))
        _log.info("loaded MLflow model from %s", folder)

    def run(self, raw_body: str) -> Any:
        return _plain(self.model.predict(self.model_input(parse_json(raw_body))))

    def model_input(self, document: Any) -> Any:
        """The frame or array MLflow's scoring server would build from `document`."""
        pandas = self._pandas
        if isinstance(document, dict):
            split = document.get("dataframe_split", document)
            if isinstance(split, dict) and "columns" in split and "data" in split:
                return pandas.DataFrame(split["data"], columns=split["columns"])
            if "dataframe_records" in document:
                return pandas.DataFrame.from_records(document["dataframe_records"])
            for key in ("inputs", "instances"):
                if key in document:
                    return self._numpy.asarray(document[key])
            if "data" in document:
                return pandas.DataFrame(document["data"])
        elif isinstance(document, list):
            return pandas.DataFrame(document)
        raise Invalid(
            'expected {"columns": [...], "data": [[...]]}, {"data": [[...]]}, '
            '{"dataframe_records": [...]} or {"inputs": ...}'
        )


def _plain(prediction: Any) -> Any:
    """A prediction as JSON-ready values: frames as records, arrays and series as lists."""
    if hasattr(prediction, "columns") and hasattr(prediction, "to_dict"):
        return prediction.to_dict(orient="records")
    tolist = getattr(prediction, "tolist", None)
    if callable(tolist):
        return tolist()
    return prediction
