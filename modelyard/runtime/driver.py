"""Load a driver the Azure way: something with `init()` and `run(raw_body)`.

A driver is a user's program (a module, imported as `score` with its folder on
`sys.path`, as Azure ML did) or a built-in driver object for a known model format.
Both are used through `Driver`, which reads the optional parts of the contract:

- `run_batch(raw_bodies) -> results`: one result per body, in order; the replica
  then answers requests through the adaptive batch queue;
- `batch_max_size` / `batch_max_wait_ms`: override the replica's batching settings;
- `input_schema` / `output_schema` (JSON Schema) or `input_sample` / `output_sample`
  (example values): what `GET /swagger.json` says about `POST /score`.

The optional attributes are read after `init()`, so a driver may set them there
(from the model it loaded).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any

from modelyard.domain.errors import Invalid

__all__ = ["BUILTIN_DRIVERS", "Driver", "load_builtin", "load_driver"]

BUILTIN_DRIVERS: dict[str, str] = {
    "sklearn": "modelyard.runtime.builtin.sklearn_driver:SklearnDriver",
    "onnx": "modelyard.runtime.builtin.onnx_driver:OnnxDriver",
    "mlflow": "modelyard.runtime.builtin.mlflow_driver:MlflowDriver",
}
"""Built-in drivers by image.json's `builtin` value, as `module:class`."""


class Driver:
    """A loaded driver: its entry points and the optional attributes it declares."""

    def __init__(self, target: object, name: str) -> None:
        run = getattr(target, "run", None)
        if not callable(run):
            raise Invalid(f"driver {name} defines no run(raw_body) function")
        self.target = target
        self.name = name
        self.run: Callable[[str], Any] = run
        run_batch = getattr(target, "run_batch", None)
        self.run_batch: Callable[[list[str]], Sequence[Any]] | None = (
            run_batch if callable(run_batch) else None
        )

    def init(self) -> None:
        """Call the driver's `init()`, if it has one (Azure drivers always did)."""
        init = getattr(self.target, "init", None)
        if callable(init):
            init()

    def attribute(self, name: str) -> Any:
        """An optional attribute of the driver, or None."""
        return getattr(self.target, name, None)

    def number(self, name: str, default: float) -> float:
        """A numeric override such as `batch_max_size`; `default` when absent."""
        value = self.attribute(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise Invalid(f"driver {self.name}: {name} must be a non-negative number")
        return value


def load_driver(path: Path) -> Driver:
    """Import `path` as module `score` with its folder first on sys.path, as Azure ML did."""
    if not path.is_file():
        raise Invalid(f"the driver program {path} does not exist", target="driver")
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    loader = SourceFileLoader("score", str(path))
    spec = importlib.util.spec_from_loader("score", loader)
    if spec is None:
        raise Invalid(f"cannot load the driver program {path}", target="driver")
    module = importlib.util.module_from_spec(spec)
    sys.modules["score"] = module
    loader.exec_module(module)
    return Driver(module, path.name)


def load_builtin(kind: str) -> Driver:
    """The built-in driver for model format `kind` (`sklearn`, `onnx`, `mlflow`)."""
    where = BUILTIN_DRIVERS.get(kind.strip().lower())
    if where is None:
        known = ", ".join(sorted(BUILTIN_DRIVERS))
        raise Invalid(f"no built-in driver {kind!r}; known: {known}", target="builtin")
    module_name, _, class_name = where.partition(":")
    driver_class = getattr(importlib.import_module(module_name), class_name)
    return Driver(driver_class(), f"builtin:{kind}")
