"""Lay out an image's build context: everything a replica needs, in one folder.

    context/
      Dockerfile          builds the same image in a container, where an engine exists
      entrypoint.sh       starts the scoring runtime (in a container or, outside one,
                          with the locally built environment named in local-python)
      image.json          what the runtime loads: driver path, models, ids
      requirements.lock   the resolved requirements the environment holds
      local-python        the built environment's interpreter on this machine
      runtime/            the modelyard scoring runtime, exactly as in the environment
      driver/<file>.py    the driver program
      assets/<id>/...     every asset (unpacked archives as folders)
      models/<name>/<version>/...   every model (unpacked archives as folders)

Files are hard-linked from the blob store where possible, so a context costs no
extra disk. The context is written beside its final place and renamed into it, so a
build killed half-way never leaves a context that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard.domain.errors import BuildFailed

ENTRYPOINT = """#!/bin/sh
# Starts the modelyard scoring runtime for this image.
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "$MODELYARD_PYTHON" ]; then
  if [ -x /opt/modelyard/env/bin/python ]; then
    MODELYARD_PYTHON=/opt/modelyard/env/bin/python
  else
    MODELYARD_PYTHON="$(cat "$HERE/local-python")"
  fi
fi
exec "$MODELYARD_PYTHON" -m modelyard.runtime --image-dir "$HERE" "$@"
"""

DOCKERFILE = """# Builds this image in a container; without an engine modelyard runs it locally.
FROM python:{python}-slim
RUN pip install --no-cache-dir uv
COPY requirements.lock /var/azureml-app/requirements.lock
RUN uv venv /opt/modelyard/env --python /usr/local/bin/python \\
 && uv pip install --python /opt/modelyard/env/bin/python -r /var/azureml-app/requirements.lock
COPY . /var/azureml-app
RUN /opt/modelyard/env/bin/python -c "import site, pathlib; \\
pathlib.Path(site.getsitepackages()[0], 'modelyard-runtime.pth') \\
.write_text('/var/azureml-app/runtime')"
ENV MODELYARD_PYTHON=/opt/modelyard/env/bin/python PORT=5001
EXPOSE 5001
ENTRYPOINT ["/var/azureml-app/entrypoint.sh"]
"""


@dataclass(frozen=True)
class ContextFile:
    """One model or asset to place: a blob file, or the unpacked tree of one."""

    source: Path
    file_name: str
    is_tree: bool


@dataclass(frozen=True)
class ContextModel:
    id: str
    name: str
    version: int
    content: ContextFile


@dataclass(frozen=True)
class ContextAsset:
    id: str
    content: ContextFile


@dataclass(frozen=True)
class ContextSpec:
    image_id: str
    image_name: str
    image_version: int
    manifest_id: str
    driver_asset_id: str | None  # None: the built-in driver named by `builtin`
    models: tuple[ContextModel, ...]
    assets: tuple[ContextAsset, ...]
    lock_text: str
    environment_python: Path
    runtime_bundle: Path | None
    builtin: str | None = None


def write_context(
    dest: Path, spec: ContextSpec, *, checkpoint: Callable[[str], None] | None = None
) -> Path:
    """Write the context to `dest`, atomically replacing any earlier one."""
    staging = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        for model in spec.models:
            _place(model.content, staging / "models" / model.name / str(model.version))
        for asset in spec.assets:
            _place(asset.content, staging / "assets" / asset.id)
        driver = _place_driver(spec, staging) if spec.driver_asset_id else None
        if checkpoint is not None:
            checkpoint("models and assets laid out")
        if spec.runtime_bundle is not None and spec.runtime_bundle.is_dir():
            shutil.copytree(spec.runtime_bundle, staging / "runtime")
        (staging / "requirements.lock").write_text(spec.lock_text)
        (staging / "local-python").write_text(str(spec.environment_python) + "\n")
        (staging / "image.json").write_text(json.dumps(_image_json(spec, driver), indent=2))
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        (staging / "Dockerfile").write_text(DOCKERFILE.format(python=python))
        entrypoint = staging / "entrypoint.sh"
        entrypoint.write_text(ENTRYPOINT)
        entrypoint.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def remove_stale_staging(parent: Path) -> None:
    """Remove staging folders a killed build left beside its context."""
    if parent.is_dir():
        for leftover in parent.glob("*.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def model_dir_for(spec: ContextSpec) -> str:
    """AZUREML_MODEL_DIR, relative to the context: one model's folder, or all models."""
    if len(spec.models) == 1:
        only = spec.models[0]
        return f"models/{only.name}/{only.version}"
    return "models"


def _image_json(spec: ContextSpec, driver: Path | None) -> dict[str, object]:
    return {
        "imageId": spec.image_id,
        "imageName": spec.image_name,
        "imageVersion": spec.image_version,
        "manifestId": spec.manifest_id,
        "driver": str(driver) if driver is not None else None,
        "builtin": spec.builtin if driver is None else None,
        "modelDir": model_dir_for(spec),
        "models": [
            {
                "id": m.id,
                "name": m.name,
                "version": m.version,
                "path": f"models/{m.name}/{m.version}",
            }
            for m in spec.models
        ],
    }


def _place(content: ContextFile, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if content.is_tree:
        shutil.copytree(
            content.source, folder, dirs_exist_ok=True, symlinks=True, copy_function=_link_or_copy
        )
    else:
        _link_or_copy(str(content.source), str(folder / (content.file_name or "artifact")))


def _place_driver(spec: ContextSpec, staging: Path) -> Path:
    asset = next(a for a in spec.assets if a.id == spec.driver_asset_id)
    name = asset.content.file_name or "driver"
    if not name.endswith(".py"):
        name = f"{Path(name).stem or 'driver'}.py"
    driver = Path("driver") / name
    (staging / "driver").mkdir()
    if asset.content.is_tree:
        candidates = sorted(asset.content.source.rglob("*.py"))
        if not candidates:
            raise BuildFailed(f"driver asset '{asset.id}' is an archive with no .py file in it")
        _link_or_copy(str(candidates[0]), str(staging / driver))
    else:
        _link_or_copy(str(asset.content.source), str(staging / driver))
    return driver


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
