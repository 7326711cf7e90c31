"""Build an image: the handler workers run for `Image` operations.

Steps, each reported as the operation's progress and written to the build log:
resolve the requirements with uv into a lock, materialize (or reuse) the environment
cached by the lock's hash, lay out the build context, and — where a container engine
works — build and push a container image. A retry after a crash starts from a clean
state: staging folders are removed, half-built environments are rebuilt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from modelyard.builder import container
from modelyard.builder.context import (
    ContextAsset,
    ContextFile,
    ContextModel,
    ContextSpec,
    remove_stale_staging,
    write_context,
)
from modelyard.builder.requirements import (
    builtin_requirements,
    combined_requirements,
    runtime_kind,
)
from modelyard.domain.errors import BuildFailed, ModelyardError
from modelyard.domain.manifests import (
    CONDA_ENV_FILE,
    PIP_REQUIREMENTS,
    Manifest,
    builtin_driver_for,
)
from modelyard.domain.models import Model
from modelyard.operations.worker import Handler, Job
from modelyard.services.context import ServiceContext
from modelyard.services.images import build_log_path, context_path
from modelyard.services.manifests import read_runtime_file

# Test hook: seconds to pause (cancellably) half-way through writing the context, so
# tests can kill or cancel a build at a known point. Never set in production.
PAUSE_ENV = "MODELYARD_TEST_BUILD_PAUSE_S"


class BuildLog:
    """Appends timestamped lines to the image's build log, flushed line by line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8", buffering=1)

    def __call__(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        self._handle.write(f"{stamp} {line}\n")

    def __enter__(self) -> BuildLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.close()


def image_build_handler(ctx: ServiceContext) -> Handler:
    def handle(job: Job) -> None:
        build_image(ctx, job)

    return handle


def build_image(ctx: ServiceContext, job: Job) -> None:
    image_id = job.operation.resource_id
    with ctx.read() as uow:
        image = uow.images.by_id(image_id)
        if image is None:
            raise BuildFailed(f"image '{image_id}' no longer exists")
        manifest = uow.manifests.get(image.account_id, image.manifest_id)
        assert manifest is not None
        models = [uow.models.get(image.account_id, model_id) for model_id in manifest.model_ids]
        registry = uow.images.registry_secret(image.id)
    if any(model is None for model in models):
        raise BuildFailed("a model of the manifest was deleted before the build ran")
    folder = ctx.images_root / image.id
    remove_stale_staging(folder)
    with BuildLog(build_log_path(ctx, image.id)) as log:
        log(
            f"=== build of image {image.name}:{image.version} ({image.id}), "
            f"attempt {job.operation.attempts} ==="
        )
        try:
            job.report("resolving requirements")
            kind = runtime_kind(manifest.runtime_type)
            requirements, conda_names = combined_requirements(
                kind,
                read_runtime_file(ctx, manifest, PIP_REQUIREMENTS),
                read_runtime_file(ctx, manifest, CONDA_ENV_FILE),
            )
            builtin = None
            if not manifest.driver_program:
                builtin = _builtin_for(ctx, [m for m in models if m is not None])
                requirements += list(builtin_requirements(builtin))
                log(f"no driverProgram: using the built-in {builtin} driver")
            log(f"runtime {manifest.runtime_type}; requirements: {', '.join(requirements)}")
            lock = ctx.environments.resolve(
                requirements, conda_names=conda_names, log=log, cancel=job
            )
            job.check()
            job.report("materializing environment")
            environment = ctx.environments.materialize(lock, log=log, cancel=job)
            log(
                f"environment {lock.sha256[:12]} "
                f"{'reused from the cache' if environment.reused else 'built'}: {environment.path}"
            )
            job.check()
            job.report("writing build context")
            spec = _context_spec(
                ctx,
                image.id,
                image.name,
                image.version,
                manifest,
                [m for m in models if m is not None],
                lock.text,
                environment.python,
                environment.path / "modelyard-runtime",
                builtin,
            )
            context = write_context(
                context_path(ctx, image.id), spec, checkpoint=_checkpoint(job, log)
            )
            log(f"build context written: {context}")
            location = str(context)
            if container.engine_available():
                job.report("building container image")
                tag = f"{image.name}:{image.version}".lower()
                if registry.location:
                    tag = f"{registry.location.rstrip('/')}/{tag}"
                location = container.build_and_push(
                    context,
                    tag,
                    registry=registry.location,
                    user=registry.user,
                    password=registry.password,
                    log=log,
                    cancel=job,
                )
            else:
                log(
                    "no container engine works here (`docker info` failed): the image runs "
                    "on local compute from its environment"
                )
            with ctx.write() as uow:
                uow.images.record_build(image.id, location=location, environment_sha256=lock.sha256)
                uow.commit()
            log("=== build succeeded ===")
        except ModelyardError as exc:
            log(f"=== build ended: {exc.code}: {exc.message} ===")
            raise
        except Exception as exc:
            log(f"=== build crashed: {type(exc).__name__}: {exc} ===")
            raise


def _context_spec(
    ctx: ServiceContext,
    image_id: str,
    image_name: str,
    image_version: int,
    manifest: Manifest,
    models: list[Model],
    lock_text: str,
    python: Path,
    runtime_bundle: Path,
    builtin: str | None,
) -> ContextSpec:
    def content(sha256: str, file_name: str, unpacked: bool) -> ContextFile:
        tree = ctx.blobs.tree_path(sha256) if unpacked else None
        if tree is not None:
            return ContextFile(tree, file_name, True)
        return ContextFile(ctx.blobs.path(sha256), file_name, False)

    return ContextSpec(
        image_id=image_id,
        image_name=image_name,
        image_version=image_version,
        manifest_id=manifest.id,
        driver_asset_id=manifest.driver_program or None,
        models=tuple(
            ContextModel(m.id, m.name, m.version, content(m.sha256, m.file_name, m.unpack))
            for m in models
        ),
        assets=tuple(
            ContextAsset(a.id, content(a.sha256, a.file_name, a.unpack)) for a in manifest.assets
        ),
        lock_text=lock_text,
        environment_python=python,
        runtime_bundle=runtime_bundle if runtime_bundle.is_dir() else None,
        builtin=builtin,
    )


def _builtin_for(ctx: ServiceContext, models: list[Model]) -> str:
    """The built-in driver for the manifest's first model of a known format."""
    for model in models:
        tree = ctx.blobs.tree_path(model.sha256) if model.unpack else None
        names = [p.name for p in tree.rglob("*") if p.is_file()] if tree else [model.file_name]
        kind = builtin_driver_for(names, has_mlmodel="MLmodel" in names)
        if kind is not None:
            return kind
    raise BuildFailed(
        "the manifest has no driverProgram and none of its models is a known format "
        "(scikit-learn .pkl/.pickle/.joblib, .onnx, or an MLflow folder with MLmodel)"
    )


def _checkpoint(job: Job, log: Callable[[str], None]) -> Callable[[str], None]:
    def checkpoint(stage: str) -> None:
        job.check()
        pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
        if pause > 0:
            log(f"test pause for {pause:g} s after: {stage}")
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                job.check()
                time.sleep(0.05)

    return checkpoint
