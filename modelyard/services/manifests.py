"""Manifest use cases: create (fetching every asset), list, show.

Everything a build will need is checked here, before anything is stored: the models
exist in this account, the driver is one of the assets, the runtime is one we can
build, every asset and requirements file can be fetched, and the requirement files
parse. A failed request leaves no row and no blob behind.
"""

from __future__ import annotations

import uuid

from modelyard.builder.requirements import parse_pip_requirements, runtime_kind, translate_conda
from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, NotFound
from modelyard.domain.manifests import (
    CONDA_ENV_FILE,
    PIP_REQUIREMENTS,
    Manifest,
    ManifestSpec,
    StoredAsset,
)
from modelyard.services.artifacts import StoredArtifact, forget_created, store_artifact
from modelyard.services.context import ServiceContext, account_for_write, existing_account
from modelyard.store.paging import Page, decode_token
from modelyard.store.tables import utcnow

MANIFEST_KIND = "manifest"
_MAX_REQUIREMENTS_BYTES = 1024 * 1024


def create_manifest(ctx: ServiceContext, account: AccountRef, spec: ManifestSpec) -> Manifest:
    runtime_kind(spec.runtime_type)  # refuses runtimes we cannot build, naming the ones we can
    _check_models(ctx, account, spec.model_ids)
    stored: list[StoredArtifact] = []
    try:
        assets = []
        for asset in spec.assets:
            artifact = store_artifact(
                ctx, account, asset.url, unpack=asset.unpack, field=f"assets[{asset.id}].url"
            )
            stored.append(artifact)
            assets.append(
                StoredAsset(
                    asset.id,
                    asset.url,
                    asset.mime_type,
                    asset.unpack,
                    artifact.ref.sha256,
                    artifact.ref.size,
                    artifact.file_name,
                )
            )
        properties, blobs = _runtime_files(ctx, account, spec, assets, stored)
        with ctx.write() as uow:
            account_id = account_for_write(ctx, uow, account)
            manifest = Manifest(
                id=str(uuid.uuid4()),
                account_id=account_id,
                name=spec.name,
                version=uow.counters.next(account_id, MANIFEST_KIND, spec.name),
                description=spec.description,
                driver_program=spec.driver_program,
                assets=tuple(assets),
                model_ids=spec.model_ids,
                runtime_type=spec.runtime_type,
                runtime_properties=properties,
                runtime_blobs=blobs,
                webservice_type="Realtime",
                created_at=utcnow(),
            )
            uow.manifests.add(manifest)
            uow.commit()
    except BaseException:
        forget_created(ctx, stored)
        raise
    return manifest


def list_manifests(
    ctx: ServiceContext,
    account: AccountRef,
    *,
    model_id: str | None,
    name: str | None,
    count: int,
    skip_token: str | None,
) -> Page[Manifest]:
    after = decode_token(skip_token)
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        return uow.manifests.list(
            account_id, model_id=model_id, name=name, after_seq=after, limit=count
        )


def get_manifest(ctx: ServiceContext, account: AccountRef, manifest_id: str) -> Manifest:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        manifest = uow.manifests.get(account_id, manifest_id)
    if manifest is None:
        raise NotFound(
            f"manifest '{manifest_id}' does not exist in account {account.scope_key}",
            code="ManifestNotFound",
        )
    return manifest


def read_runtime_file(ctx: ServiceContext, manifest: Manifest, prop: str) -> str | None:
    sha = manifest.runtime_blobs.get(prop)
    if sha is None:
        return None
    with ctx.blobs.open(sha) as handle:
        return handle.read(_MAX_REQUIREMENTS_BYTES + 1).decode("utf-8", errors="replace")


def _check_models(ctx: ServiceContext, account: AccountRef, model_ids: tuple[str, ...]) -> None:
    if not model_ids:
        return
    with ctx.read() as uow:
        account_id = uow.accounts.find(account)
        missing = [
            model_id
            for model_id in model_ids
            if account_id is None or uow.models.get(account_id, model_id) is None
        ]
    if missing:
        raise Invalid(
            f"modelIds: no model {', '.join(repr(m) for m in missing)} in account "
            f"{account.scope_key}",
            target="modelIds",
            code="ModelNotFound",
        )


def _runtime_files(
    ctx: ServiceContext,
    account: AccountRef,
    spec: ManifestSpec,
    assets: list[StoredAsset],
    stored: list[StoredArtifact],
) -> tuple[dict[str, str], dict[str, str]]:
    """pipRequirements / condaEnvFile: a URL to fetch, or the id of one of the assets."""
    properties: dict[str, str] = {}
    blobs: dict[str, str] = {}
    by_id = {asset.id: asset for asset in assets}
    for prop, value in (
        (PIP_REQUIREMENTS, spec.pip_requirements),
        (CONDA_ENV_FILE, spec.conda_env_file),
    ):
        if not value:
            continue
        properties[prop] = value
        if value in by_id:
            blobs[prop] = by_id[value].sha256
        else:
            artifact = store_artifact(ctx, account, value, unpack=False, field=prop)
            stored.append(artifact)
            blobs[prop] = artifact.ref.sha256
        text = _read_text(ctx, blobs[prop], prop)
        if prop == PIP_REQUIREMENTS:
            parse_pip_requirements(text)
        else:
            translate_conda(text)
    return properties, blobs


def _read_text(ctx: ServiceContext, sha256: str, prop: str) -> str:
    with ctx.blobs.open(sha256) as handle:
        data = handle.read(_MAX_REQUIREMENTS_BYTES + 1)
    if len(data) > _MAX_REQUIREMENTS_BYTES:
        raise Invalid(f"{prop}: the file is larger than 1 MiB", target=prop)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{prop}: the file is not UTF-8 text", target=prop) from None
