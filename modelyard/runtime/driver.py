"""Load a driver program the Azure way: a module with `init()` and `run(raw_body)`."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class Driver:
    module: ModuleType

    def init(self) -> None:
        init = getattr(self.module, "init", None)
        if callable(init):
            init()

    def run(self, raw_body: str) -> Any:
        return self.module.run(raw_body)


def load_driver(path: Path) -> Driver:
    """Import `path` as module `score` with its folder on sys.path, as Azure ML did."""
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    loader = SourceFileLoader("score", str(path))
    spec = importlib.util.spec_from_loader("score", loader)
    if spec is None:
        raise ImportError(f"cannot load driver {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["score"] = module
    loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise ImportError(f"driver {path} defines no run(raw_body) function")
    return Driver(module)
