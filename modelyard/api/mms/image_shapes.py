"""Manifest, image and operation shapes of the Model Management API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelyard.api.mms.shapes import iso
from modelyard.domain.images import ImageSpec, RegistryInfo
from modelyard.domain.manifests import (
    CONDA_ENV_FILE,
    PIP_REQUIREMENTS,
    AssetSpec,
    Manifest,
    ManifestSpec,
)
from modelyard.domain.operations import Operation
from modelyard.services.images import ImageView


class AssetRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Alphanumerics and hyphens, at most 32 characters.")
    url: str = Field(description="http(s), file:// (allowed roots) or upload://<id>.")
    mimeType: str = "application/octet-stream"
    unpack: bool | None = None
    unPack: bool | None = Field(None, description="The 2017-06 spelling of unpack.")

    def to_spec(self) -> AssetSpec:
        return AssetSpec(self.id, self.url, self.mimeType, bool(self.unpack or self.unPack))


class TargetRuntimeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runtimeType: str = Field(description="Python, ScikitPython, CNTKPython or SparkPython.")
    properties: dict[str, str | None] = Field(
        default_factory=dict,
        description="pipRequirements / condaEnvFile: a URL of the file, or an asset id.",
    )


class ManifestRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, description="Required on the account API.")
    description: str | None = Field(None, description="At most 512 Unicode characters.")
    driverProgram: str | None = Field(
        None,
        description="The id of the asset holding the driver; leave it out for a "
        "built-in driver (scikit-learn, ONNX and MLflow models).",
    )
    assets: list[AssetRequest] = Field(default_factory=list)
    modelIds: list[str] | None = None
    modelType: str = "Registered"
    targetRuntime: TargetRuntimeRequest
    webserviceType: str | None = "Realtime"

    def to_spec(self, default_name: str | None) -> ManifestSpec:
        properties = self.targetRuntime.properties
        return ManifestSpec(
            name=self.name or default_name or "",
            driver_program=self.driverProgram or "",
            assets=tuple(a.to_spec() for a in self.assets),
            model_ids=tuple(self.modelIds or ()),
            runtime_type=self.targetRuntime.runtimeType,
            pip_requirements=properties.get(PIP_REQUIREMENTS) or None,
            conda_env_file=properties.get(CONDA_ENV_FILE) or None,
            description=self.description or "",
            model_type=self.modelType,
            webservice_type=self.webserviceType or "Realtime",
        )


class RegistryInfoRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user: str | None = None
    location: str | None = None
    password: str | None = Field(None, description="Write-only: never returned.")


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, description="Default: the manifest's name.")
    description: str | None = None
    imageType: str = "Docker"
    manifestId: str
    computeResourceId: str | None = Field(
        None, description="ARM id of a compute cluster (the 2017 Azure CLI sends one)."
    )
    registryInfo: RegistryInfoRequest | None = None

    def to_spec(self, default_name: str) -> ImageSpec:
        registry = self.registryInfo or RegistryInfoRequest()
        return ImageSpec(
            name=self.name or default_name,
            manifest_id=self.manifestId,
            image_type=self.imageType,
            description=self.description or "",
            compute_resource_id=self.computeResourceId,
            registry=RegistryInfo(registry.location, registry.user, registry.password),
        )


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    return {
        "id": manifest.id,
        "name": manifest.name,
        "version": manifest.version,
        "description": manifest.description,
        "driverProgram": manifest.driver_program,
        "assets": [
            {
                "id": a.id,
                "url": a.url,
                "mimeType": a.mime_type,
                "unpack": a.unpack,
                "sha256": a.sha256,
                "size": a.size,
            }
            for a in manifest.assets
        ],
        "modelIds": list(manifest.model_ids),
        "modelType": manifest.model_type,
        "targetRuntime": {
            "runtimeType": manifest.runtime_type,
            "properties": dict(manifest.runtime_properties),
        },
        "webserviceType": manifest.webservice_type or "Realtime",
        "createdTime": iso(manifest.created_at),
    }


def operation_error_json(operation: Operation, log_uri: str | None = None) -> dict[str, Any] | None:
    """The stored error; for builds, details[0] names the build log (clients show it)."""
    if operation.error is None:
        return None
    body = operation.error.to_json()
    if log_uri is not None:
        body["details"] = [{"code": "BuildLog", "message": log_uri}, *body["details"]]
    return body


def image_json(view: ImageView, log_uri: str) -> dict[str, Any]:
    image, operation = view.image, view.operation
    return {
        "id": image.id,
        "name": image.name,
        "version": image.version,
        "description": image.description,
        "imageType": image.image_type,
        "manifestId": image.manifest_id,
        "manifest": manifest_json(view.manifest),
        "computeResourceId": image.compute_resource_id,
        "createdTime": iso(image.created_at),
        "creationState": operation.state.value,
        "error": operation_error_json(operation, log_uri),
        "imageBuildLogUri": log_uri,
        "imageLocation": image.image_location,
        "operationId": operation.id,
    }


def operation_json(operation: Operation, resource_path: str, log_uri: str | None) -> dict[str, Any]:
    return {
        "id": operation.id,
        "operationType": operation.kind.value,
        "resourceLocation": resource_path,
        "createdTime": iso(operation.created_at),
        "endTime": iso(operation.end_time) if operation.end_time else None,
        "state": operation.state.value,
        "error": operation_error_json(operation, log_uri),
        "progress": operation.progress,
        "attempts": operation.attempts,
    }
