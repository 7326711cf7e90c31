"""What the built-in drivers share: finding the model file and reading request rows."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelyard.domain.errors import Invalid, NotFound

__all__ = [
    "find_model_file",
    "model_dir",
    "parse_json",
    "parse_rows",
    "score_each",
    "split_lengths",
]


def model_dir() -> Path:
    """AZUREML_MODEL_DIR, which the runtime always sets before `init()`."""
    value = os.environ.get("AZUREML_MODEL_DIR")
    if not value:
        raise Invalid("AZUREML_MODEL_DIR is not set")
    return Path(value)


def find_model_file(root: Path, suffixes: tuple[str, ...]) -> Path:
    """`root` itself when it is such a file, else the first such file under it (by path)."""
    if root.is_file() and root.name.lower().endswith(suffixes):
        return root
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not found:
        raise NotFound(f"no {' or '.join(suffixes)} file under {root}")
    return found[0]


def parse_rows(raw_body: str, *, key: str = "data") -> Any:
    """The rows of a request: `{"data": [[...], ...]}` or a bare list of rows."""
    document = parse_json(raw_body)
    if isinstance(document, dict) and key in document:
        return document[key]
    if isinstance(document, list):
        return document
    raise Invalid(f'expected {{"{key}": [[...], ...]}} or a list of rows')


def parse_json(raw_body: str) -> Any:
    """The request body as JSON; Invalid (answered 400) when it is not JSON."""
    try:
        return json.loads(raw_body)
    except ValueError as exc:
        raise Invalid(f"the request body is not JSON: {exc}") from None


def split_lengths(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """(start, stop) of each request's rows in the stacked batch."""
    bounds = []
    start = 0
    for length in lengths:
        bounds.append((start, start + length))
        start += length
    return bounds


def score_each(run: Callable[[str], Any], raw_bodies: list[str]) -> list[Any]:
    """Score bodies one by one; a failure becomes that body's result (an exception)."""
    results: list[Any] = []
    for raw in raw_bodies:
        try:
            results.append(run(raw))
        except Exception as exc:
            results.append(exc)
    return results
