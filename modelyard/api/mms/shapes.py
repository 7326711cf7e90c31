"""Request and response shapes of the Model Management API (field names from the seeds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.compute.base import ReplicaSetStatus
from modelyard.domain.errors import Invalid
from modelyard.domain.images import ImageSpec, RegistryInfo
from modelyard.domain.manifests import (
    CONDA_ENV_FILE,
    PIP_REQUIREMENTS,
    AssetSpec,
    Manifest,
    ManifestSpec,
)
from modelyard.domain.models import Model, ModelSpec
from modelyard.domain.operations import Operation
from modelyard.domain.webservices import Deployment, ServiceConfig, ServiceSpec
from modelyard.services.images import ImageView
from modelyard.services.webservices import ServiceView
from modelyard.store.uploads import Upload


class ModelRequest(BaseModel):
    """Register-model body. Unknown fields are ignored, as Azure's service did."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Alphanumerics and hyphens, at most 32 characters.")
    url: str = Field(description="http(s), file:// (allowed roots) or upload://<id>.")
    mimeType: str = Field(description="Media type of the model content.")
    tags: list[str] | None = Field(None, description="Alphanumeric, each at most 30 characters.")
    description: str | None = Field(None, description="At most 200 Unicode characters.")
    unpack: bool = Field(False, description="Unpack a zip or tar archive safely.")

    @field_validator("unpack", mode="before")
    @classmethod
    def _lenient_bool(cls, value: Any) -> Any:
        # The 2017-06 seed shows "unpack": "<unpack if model is zipped>" as a string.
        return False if value is None or value == "" else value

    def to_spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.name,
            url=self.url,
            mime_type=self.mimeType,
            tags=tuple(self.tags or ()),
            description=self.description or "",
            unpack=self.unpack,
        )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def model_json(model: Model, model_uri: str) -> dict[str, Any]:
    """The seed's Model plus what modelyard adds: sha256, size and where to download it."""
    return {
        "id": model.id,
        "name": model.name,
        "version": model.version,
        "tags": list(model.tags),
        "description": model.description,
        "url": model.url,
        "mimeType": model.mime_type,
        "unpack": model.unpack,
        "createdAt": iso(model.created_at),
        "sha256": model.sha256,
        "size": model.size,
        "contentUri": f"{model_uri}/content",
    }


def upload_json(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "url": f"upload://{upload.id}",
        "sha256": upload.sha256,
        "size": upload.size,
        "fileName": upload.file_name,
        "createdAt": iso(upload.created_at),
    }


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


class AutoScalerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    autoscaleEnabled: bool | None = None
    minReplicas: int | None = None
    maxReplicas: int | None = None
    refreshPeriodInSeconds: int | None = None
    targetUtilization: int | None = None


class ReservationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cpu: str | None = Field(None, description="Kubernetes notation: 0.5, 1, 250m.")
    memory: str | None = Field(None, description="Kubernetes notation: 512Mi, 1G.")


class DataCollectionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    storageEnabled: bool | None = None
    eventHubEnabled: bool | None = None


class ComputeResourceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    type: str | None = None


class ServiceSettingsRequest(BaseModel):
    """The fields create and update share; None means "not given"."""

    model_config = ConfigDict(extra="ignore")

    numReplicas: int | None = None
    autoScaler: AutoScalerRequest | None = None
    maxConcurrentRequestsPerContainer: int | None = None
    containerResourceReservation: ReservationRequest | None = None
    appInsightsEnabled: bool | None = None
    dataCollection: DataCollectionRequest | None = None

    def changes(self) -> dict[str, Any]:
        """The settings named in the request, in ServiceConfig's JSON form."""
        return self.model_dump(
            exclude_none=True,
            exclude={
                "imageId",
                "name",
                "computeResource",
                "kubeConfig",
                "acrImagePullSecret",
                "manifestId",
            },
        )


class ServiceCreateRequest(ServiceSettingsRequest):
    name: str
    imageId: str
    computeResource: ComputeResourceRequest | None = None
    kubeConfig: str | None = Field(None, description="2017-06: deploy to a Kubernetes cluster.")
    acrImagePullSecret: str | None = None

    def to_spec(self) -> ServiceSpec:
        if self.kubeConfig:
            raise Invalid(
                "kubeConfig: Kubernetes compute targets are not available yet; leave kubeConfig "
                "empty to deploy on this server's local compute",
                target="kubeConfig",
                code="ComputeTargetUnavailable",
            )
        base = ServiceConfig(num_replicas=None if self._autoscaled() else 1)
        config = base.updated(self.changes())
        compute = self.computeResource.id if self.computeResource else None
        return ServiceSpec(self.name, self.imageId, config, compute)

    def _autoscaled(self) -> bool:
        return bool(self.autoScaler and self.autoScaler.autoscaleEnabled)


class ServiceUpdateRequest(ServiceSettingsRequest):
    imageId: str | None = None
    manifestId: str | None = Field(None, description="2017-06: build an image from it first.")


class RegenerateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keyType: str = Field(description="Primary or Secondary.")


def service_json(
    view: ServiceView,
    scoring_uri: str,
    model_uri: str,
    log_uri: str,
    status: ReplicaSetStatus | None,
) -> dict[str, Any]:
    service, operation = view.service, view.operation
    config = service.config.to_json()
    return {
        "id": service.id,
        "name": service.name,
        "createdAt": iso(service.created_at),
        "updatedAt": iso(service.updated_at),
        "state": operation.state.value,
        "error": operation_error_json(operation),
        "scoringUri": scoring_uri,
        "swaggerUri": scoring_uri.rsplit("/", 1)[0] + "/swagger.json",
        "image": image_json(view.image, log_uri),
        "manifest": manifest_json(view.image.manifest),
        "models": [model_json(m, f"{model_uri}/{m.id}") for m in view.models],
        "computeResource": {"id": service.compute_resource_id, "type": "Cluster"},
        **config,
        "operationId": operation.id,
        "replicas": _replicas_json(status),
    }


def _replicas_json(status: ReplicaSetStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "desired": status.desired,
        "ready": status.ready,
        "instances": [
            {
                "id": r.replica_id,
                "pid": r.pid,
                "state": r.state,
                "restarts": r.restarts,
                "startedAt": iso(r.started_at) if r.started_at else None,
                "imageId": r.image_id,
            }
            for r in status.replicas
        ],
    }


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "serviceId": deployment.service_id,
        "serviceName": deployment.service_name,
        "imageId": deployment.image_id,
        "createdAt": iso(deployment.created_at),
        "expiredAt": iso(deployment.expired_at) if deployment.expired_at else None,
        "status": deployment.status,
    }
