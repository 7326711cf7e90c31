"""`create_app(settings)`: the one place the server is assembled.

Nothing happens at import time: the engine, the blob store and the routers are built
here from the settings, and migrations plus the admin token run at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard import __version__
from modelyard.api import admin, mms, mms2017
from modelyard.api.mms import errors as mms_errors
from modelyard.api.request_id import RequestIdMiddleware
from modelyard.artifacts import FetchPolicy, LocalBlobStore, UnpackLimits
from modelyard.builder.environments import UvEnvironmentBuilder
from modelyard.compute.local.supervisor import LocalCompute
from modelyard.config import Settings
from modelyard.domain.errors import ModelyardError
from modelyard.domain.operations import OperationKind
from modelyard.operations.worker import WorkerPool, WorkerPools
from modelyard.services.context import ServiceContext
from modelyard.services.image_build import image_build_handler
from modelyard.services.tokens import ensure_admin_token
from modelyard.services.webservice_deploy import restore_services, service_deploy_handler
from modelyard.store.database import Database

_log = structlog.get_logger("modelyard")


def build_context(
    settings: Settings, db: Database, compute: LocalCompute | None = None
) -> ServiceContext:
    return ServiceContext(
        db=db,
        blobs=LocalBlobStore(settings.blob_root),
        fetch_policy=FetchPolicy(
            allowed_file_roots=tuple(p.resolve() for p in settings.allowed_file_roots),
            allow_private_networks=settings.allow_private_networks,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.max_artifact_bytes,
        ),
        unpack_limits=UnpackLimits(
            max_total_bytes=settings.unpack_max_bytes,
            max_files=settings.unpack_max_files,
            max_ratio=settings.unpack_max_ratio,
        ),
        max_artifact_bytes=settings.max_artifact_bytes,
        environments=UvEnvironmentBuilder(
            settings.home / "envs", resolution_ttl_s=settings.resolution_ttl_s
        ),
        home=settings.home,
        strict_accounts=settings.strict_accounts,
        compute=compute,
        service_host=settings.service_host,
        service_ports=(settings.service_port_start, settings.service_port_end),
        deploy_timeout_s=settings.deploy_timeout_s,
    )


def build_workers(settings: Settings, context: ServiceContext, concurrency: int) -> WorkerPools:
    """Workers for image builds (server or `modelyard worker`) and, where this process
    runs the compute target, for services: separate pools, so a service update that
    waits for an image never holds the worker that would build it."""
    lease = timedelta(seconds=settings.operation_lease_s)
    pools = [
        WorkerPool(
            db=context.db,
            handlers={OperationKind.IMAGE: image_build_handler(context)},
            concurrency=concurrency,
            lease=lease,
            status_for=mms_errors.status_for,
        )
    ]
    if context.compute is not None:
        pools.append(
            WorkerPool(
                db=context.db,
                handlers={OperationKind.SERVICE: service_deploy_handler(context)},
                concurrency=settings.service_workers,
                lease=lease,
                status_for=mms_errors.status_for,
            )
        )
    return WorkerPools(pools)


def prepare_home(settings: Settings, context: ServiceContext) -> None:
    """Start-up chores shared by server and workers: schema, leftovers of killed work."""
    context.db.migrate()
    if isinstance(context.blobs, LocalBlobStore):
        context.blobs.sweep_tmp(older_than_s=3600)
    if isinstance(context.environments, UvEnvironmentBuilder):
        for leftover in context.environments.sweep_partial():
            _log.info("removed a half-built environment", path=str(leftover))


def create_app(settings: Settings) -> FastAPI:
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    compute = LocalCompute(settings.service_host, drain_s=settings.drain_s)
    context = build_context(settings, db, compute)
    workers = build_workers(settings, context, settings.workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_home(settings, context)
        if ensure_admin_token(db, settings.admin_token_path):
            _log.info("created admin token", path=str(settings.admin_token_path))
        compute.start()
        restore_services(context)
        workers.start()
        _log.info("ready", admin_token_file=str(settings.admin_token_path))
        try:
            yield
        finally:
            workers.stop()
            compute.shutdown()
            db.dispose()

    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Model management and serving; speaks the Azure ML Model Management API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.context = context
    app.state.workers = workers

    app.add_exception_handler(ModelyardError, mms_errors.handle_domain_error)
    app.add_exception_handler(RequestValidationError, mms_errors.handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, mms_errors.handle_http_error)
    app.add_exception_handler(Exception, mms_errors.handle_unexpected)

    @app.get("/healthz", tags=["Health"], summary="200 once the server is ready")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    for router in [*mms.build_routers(), *mms2017.build_routers(), admin.router]:
        app.include_router(router)

    app.add_middleware(RequestIdMiddleware)
    return app
