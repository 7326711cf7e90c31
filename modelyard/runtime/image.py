"""Read an image's `image.json`: which driver to load and where its models are.

The builder writes the file (see `modelyard.builder.context`); this is the runtime's
side of that contract, parsed once at start-up into an `ImageSpec` so a malformed
context fails the replica before it listens, with a message naming the bad field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.domain.errors import Invalid

__all__ = ["IMAGE_FILE", "ImageModel", "ImageSpec", "read_image"]

IMAGE_FILE = "image.json"


@dataclass(frozen=True)
class ImageModel:
    """One registered model laid out in the context."""

    id: str
    name: str
    version: int
    path: Path
    """Absolute: the context folder joined with the relative path image.json gives."""


@dataclass(frozen=True)
class ImageSpec:
    """What the runtime needs from an image's build context."""

    context: Path
    name: str | None
    """The image's name (for titles and logs), when image.json gives one."""
    driver: Path | None
    """The driver program (absolute), or None when a built-in driver serves the models."""
    builtin: str | None
    """`sklearn`, `onnx` or `mlflow`: the built-in driver used when `driver` is None."""
    model_dir: Path | None
    """What AZUREML_MODEL_DIR defaults to (absolute)."""
    models: tuple[ImageModel, ...]


def read_image(context: Path) -> ImageSpec:
    """Parse `context/image.json`; raise Invalid naming the field that is wrong."""
    context = context.resolve()
    path = context / IMAGE_FILE
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Invalid(f"{path} does not exist: is {context} an image's build context?") from None
    except (OSError, ValueError) as exc:
        raise Invalid(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Invalid(f"{path} must hold a JSON object")
    driver = _optional_str(document, "driver")
    builtin = _optional_str(document, "builtin")
    if driver is None and builtin is None:
        raise Invalid(f"{path} names neither a 'driver' nor a 'builtin' driver", target="driver")
    model_dir = _optional_str(document, "modelDir")
    raw_models = document.get("models") or []
    if not isinstance(raw_models, list):
        raise Invalid(f"{path}: 'models' must be a list", target="models")
    return ImageSpec(
        context=context,
        name=_optional_str(document, "imageName"),
        driver=context / driver if driver is not None else None,
        builtin=builtin,
        model_dir=context / model_dir if model_dir is not None else None,
        models=tuple(_model(context, entry) for entry in raw_models),
    )


def _optional_str(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"image.json: {key!r} must be a string", target=key)
    return value


def _model(context: Path, entry: Any) -> ImageModel:
    try:
        return ImageModel(
            id=str(entry["id"]),
            name=str(entry["name"]),
            version=int(entry["version"]),
            path=context / str(entry["path"]),
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise Invalid(
            f"image.json: every model needs id, name, version and path; got {entry!r}",
            target="models",
        ) from exc
