"""`model_path(name, version)`: find a registered model's folder from inside a driver.

Azure ML drivers called `Model.get_model_path("name")` in `init()` to find a model
when an image holds several. This is the same idea without the SDK: the runtime
exports the context folder as MODELYARD_IMAGE_DIR at start-up, and the answer comes
from that context's image.json.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelyard.domain.errors import Invalid, NotFound
from modelyard.runtime.image import read_image

__all__ = ["IMAGE_DIR_ENV", "model_path"]

IMAGE_DIR_ENV = "MODELYARD_IMAGE_DIR"


def model_path(name: str, version: int | None = None) -> Path:
    """The folder holding model `name` (its highest version in the image by default).

    Names match exactly, or else ignoring case (registered names are unique ignoring
    case). Raises NotFound when the image holds no such model or version, and Invalid
    when called outside a replica (MODELYARD_IMAGE_DIR unset).
    """
    context = os.environ.get(IMAGE_DIR_ENV)
    if not context:
        raise Invalid(f"{IMAGE_DIR_ENV} is not set: model_path() works inside a replica")
    models = read_image(Path(context)).models
    named = [m for m in models if m.name == name] or [
        m for m in models if m.name.casefold() == name.casefold()
    ]
    if version is not None:
        named = [m for m in named if m.version == version]
    if not named:
        wanted = name if version is None else f"{name}:{version}"
        have = ", ".join(f"{m.name}:{m.version}" for m in models) or "none"
        raise NotFound(f"this image holds no model {wanted} (it holds: {have})")
    return max(named, key=lambda m: m.version).path
