"""The runtime runs in an image's environment: it may import only what that environment has."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import modelyard.runtime

RUNTIME = Path(modelyard.runtime.__file__).parent
ALLOWED_THIRD_PARTY = {"uvicorn", "prometheus_client"}
ALLOWED_MODELYARD = ("modelyard.runtime", "modelyard.domain")


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_runtime_modules_import_only_stdlib_domain_uvicorn_and_prometheus() -> None:
    offending = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if name.startswith(ALLOWED_MODELYARD) or top in ALLOWED_THIRD_PARTY:
                continue
            if top in sys.stdlib_module_names or name == "__future__":
                continue
            offending.append(f"{path.relative_to(RUNTIME)}: {name}")
    assert offending == []


def test_starting_the_runtime_loads_no_server_or_model_package() -> None:
    modules = [
        f"modelyard.runtime.{p.stem}" for p in RUNTIME.glob("*.py") if p.stem != "__init__"
    ] + [f"modelyard.runtime.builtin.{p.stem}" for p in (RUNTIME / "builtin").glob("*.py")]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "forbidden = {'fastapi', 'pydantic', 'sqlalchemy', 'starlette', 'httpx', 'numpy',"
        " 'sklearn', 'onnxruntime', 'structlog', 'yaml', 'modelyard.builder', 'modelyard.store'}\n"
        "print(sorted(m for m in sys.modules if m in forbidden))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
