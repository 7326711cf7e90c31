"""The manifest: how registered models are scored — driver, assets, models, runtime.

Rules (seeds): name like a model's; description at most 512 Unicode characters; asset
ids alphanumerics and hyphens, at most 32 characters, unique; every asset has a url;
driverProgram names one of the assets; modelType is `Registered`; runtimeType is one
modelyard can build (see `modelyard.builder.requirements.runtime_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelyard.domain.errors import Invalid
from modelyard.domain.naming import validate_length, validate_name

DESCRIPTION_MAX = 512
RUNTIME_TYPES = ("Python", "ScikitPython", "CNTKPython", "SparkPython", "parkPython")
PIP_REQUIREMENTS = "pipRequirements"
CONDA_ENV_FILE = "condaEnvFile"


@dataclass(frozen=True)
class AssetSpec:
    id: str
    url: str
    mime_type: str = "application/octet-stream"
    unpack: bool = False


@dataclass(frozen=True)
class ManifestSpec:
    """A manifest request, validated; artifacts are fetched by the service afterwards."""

    name: str
    driver_program: str  # "" for a built-in driver chosen from the model's format
    assets: tuple[AssetSpec, ...]
    model_ids: tuple[str, ...]
    runtime_type: str
    pip_requirements: str | None = None  # a URL, or the id of one of the assets
    conda_env_file: str | None = None  # likewise
    description: str = ""
    model_type: str = "Registered"
    webservice_type: str = "Realtime"

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_length(self.description, DESCRIPTION_MAX, "description")
        if self.model_type.lower() != "registered":
            raise Invalid("modelType must be 'Registered'", target="modelType")
        if self.webservice_type.lower() != "realtime":
            raise Invalid("webserviceType must be 'Realtime'", target="webserviceType")
        seen: set[str] = set()
        for asset in self.assets:
            validate_name(asset.id, field="assets.id")
            if asset.id in seen:
                raise Invalid(f"asset id '{asset.id}' appears twice", target="assets.id")
            seen.add(asset.id)
            if not asset.url:
                raise Invalid(f"asset '{asset.id}' has no url", target="assets.url")
        if not self.driver_program:
            if not self.model_ids:
                raise Invalid(
                    "driverProgram is required unless the manifest has models of a known "
                    "format (scikit-learn pickle/joblib, ONNX, MLflow), which get a built-in "
                    "driver",
                    target="driverProgram",
                )
        elif self.driver_program not in seen:
            known = ", ".join(sorted(seen)) or "none"
            raise Invalid(
                f"driverProgram '{self.driver_program}' names no asset; asset ids: {known}",
                target="driverProgram",
            )
        if len(set(self.model_ids)) != len(self.model_ids):
            raise Invalid("modelIds lists a model twice", target="modelIds")


@dataclass(frozen=True)
class StoredAsset:
    """An asset after its content was copied into the blob store."""

    id: str
    url: str
    mime_type: str
    unpack: bool
    sha256: str
    size: int
    file_name: str


@dataclass(frozen=True)
class Manifest:
    id: str
    account_id: int
    name: str
    version: int
    description: str
    driver_program: str
    assets: tuple[StoredAsset, ...]
    model_ids: tuple[str, ...]
    runtime_type: str
    runtime_properties: dict[str, str]  # as given: pipRequirements / condaEnvFile
    runtime_blobs: dict[str, str]  # property -> sha256 of the stored file
    webservice_type: str
    created_at: datetime
    model_type: str = field(default="Registered")

    def asset(self, asset_id: str) -> StoredAsset:
        return next(a for a in self.assets if a.id == asset_id)


BUILTIN_SUFFIXES = {".pkl": "sklearn", ".pickle": "sklearn", ".joblib": "sklearn", ".onnx": "onnx"}


def builtin_driver_for(file_names: list[str], has_mlmodel: bool) -> str | None:
    """The built-in driver for a model: by its file's suffix, or MLflow's MLmodel file."""
    if has_mlmodel:
        return "mlflow"
    for name in file_names:
        for suffix, kind in BUILTIN_SUFFIXES.items():
            if name.lower().endswith(suffix):
                return kind
    return None
