"""Realtime service and deployment shapes of the Model Management API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelyard.api.mms.image_shapes import image_json, manifest_json, operation_error_json
from modelyard.api.mms.shapes import iso, model_json
from modelyard.compute.base import ReplicaSetStatus
from modelyard.domain.errors import Invalid
from modelyard.domain.webservices import Deployment, ServiceConfig, ServiceSpec
from modelyard.services.webservices import ServiceView


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


class BatchingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    enabled: bool | None = Field(None, description="Batch for drivers with run_batch.")
    maxBatchSize: int | None = None
    maxWaitMs: float | None = None


class ServiceSettingsRequest(BaseModel):
    """The fields create and update share; None means "not given"."""

    model_config = ConfigDict(extra="ignore")

    numReplicas: int | None = None
    autoScaler: AutoScalerRequest | None = None
    maxConcurrentRequestsPerContainer: int | None = None
    containerResourceReservation: ReservationRequest | None = None
    appInsightsEnabled: bool | None = None
    dataCollection: DataCollectionRequest | None = None
    batching: BatchingRequest | None = Field(
        None, description="modelyard extension: adaptive batching for drivers with run_batch."
    )

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
