"""Roll a service to a version: the handler service workers run, and restart recovery.

The handler waits (cancellably) for an image still being built (the 2017 update form),
asks the compute target to roll the replicas, and only when the new replicas serve
saves the new image and settings and records the deployment. A failure is recorded
as a failed deployment while the previous version keeps serving.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import structlog

from modelyard.compute.base import ReplicaSetSpec
from modelyard.domain.errors import DeploymentFailed, OperationCancelled
from modelyard.domain.operations import OperationState
from modelyard.domain.webservices import Deployment, ServiceConfig, WebService
from modelyard.operations.worker import Handler, Job
from modelyard.services.context import ServiceContext
from modelyard.services.images import context_path
from modelyard.services.webservices import key_hashes
from modelyard.store.tables import utcnow

_log = structlog.get_logger("modelyard.services")


def service_deploy_handler(ctx: ServiceContext) -> Handler:
    def handle(job: Job) -> None:
        deploy_service(ctx, job)

    return handle


def deploy_service(ctx: ServiceContext, job: Job) -> None:
    assert ctx.compute is not None
    operation = job.operation
    payload = operation.payload or {}
    with ctx.read() as uow:
        service = uow.services.by_id(operation.resource_id)
    if service is None:
        raise DeploymentFailed("the service was deleted before it could be deployed")
    log = _DeployLog(ctx.services_root / service.id / "logs" / "deploy.log")
    if payload.get("waitForImage"):
        job.report("waiting for the image build")
        _wait_for_image(ctx, job, str(payload["waitForImage"]))
    image_id = str(payload.get("imageId") or service.image_id)
    config = ServiceConfig.from_json(payload["config"]) if "config" in payload else service.config
    target = service.with_changes(image_id=image_id, config=config, updated_at=utcnow())
    job.report("starting replicas")
    log(f"deploying image {image_id} ({config.initial_replicas} replica(s))")
    started = utcnow()
    try:
        ctx.compute.deploy(
            replica_spec(ctx, target), log=log, cancel=job, timeout_s=ctx.deploy_timeout_s
        )
    except Exception as exc:
        log(f"deployment failed: {exc}")
        _record(
            ctx,
            target,
            "Failed" if not isinstance(exc, OperationCancelled) else "Cancelled",
            started,
            current=False,
        )
        raise
    with ctx.write() as uow:
        uow.services.save(target)
        uow.commit()
    _record(ctx, target, "Succeeded", started, current=True)
    log("deployment succeeded")


def replica_spec(ctx: ServiceContext, service: WebService) -> ReplicaSetSpec:
    context = context_path(ctx, service.image_id)
    python = Path((context / "local-python").read_text().strip())
    with ctx.read() as uow:
        keys = uow.services.keys(service.id)
    return ReplicaSetSpec(
        service_id=service.id,
        service_name=service.name,
        image_id=service.image_id,
        context_dir=context,
        python=python,
        port=service.port,
        config=service.config,
        key_hashes=key_hashes(keys),
        service_dir=ctx.services_root / service.id,
    )


def restore_services(ctx: ServiceContext) -> threading.Thread:
    """After a restart, bring back every service whose last deployment succeeded."""

    def run() -> None:
        assert ctx.compute is not None
        with ctx.read() as uow:
            services = [s for s in uow.services.all() if uow.deployments.current(s.id)]
        for service in services:
            try:
                ctx.compute.deploy(
                    replica_spec(ctx, service),
                    log=lambda line: None,
                    cancel=_Never(),
                    timeout_s=ctx.deploy_timeout_s,
                )
                _log.info("service restored", service=service.name, port=service.port)
            except Exception:
                _log.exception("could not restore service", service=service.name)

    thread = threading.Thread(target=run, name="modelyard-restore", daemon=True)
    thread.start()
    return thread


def _wait_for_image(ctx: ServiceContext, job: Job, image_id: str) -> None:
    while True:
        job.check()
        with ctx.read() as uow:
            image = uow.images.by_id(image_id)
            operation = uow.operations.by_id(image.operation_id) if image else None
        if operation is None:
            raise DeploymentFailed(f"image {image_id} disappeared before it was built")
        if operation.state is OperationState.SUCCEEDED:
            return
        if operation.state.terminal:
            reason = operation.error.message if operation.error else operation.state.value
            raise DeploymentFailed(f"the image build for this update ended: {reason}")
        time.sleep(0.2)


def _record(
    ctx: ServiceContext, service: WebService, status: str, started: datetime, *, current: bool
) -> None:
    now = utcnow()
    with ctx.write() as uow:
        if current:
            uow.deployments.expire_current(service.id, now)
        uow.deployments.add(
            Deployment(
                id=str(uuid.uuid4()),
                account_id=service.account_id,
                service_id=service.id,
                service_name=service.name,
                image_id=service.image_id,
                created_at=started if not current else now,
                expired_at=None if current else now,
                status=status,
            )
        )
        uow.commit()


class _DeployLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        with self._path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")


class _Never:
    def is_set(self) -> bool:
        return False
