"""Registry use cases on a real database and blob store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelyard.app import build_context
from modelyard.config import Settings
from modelyard.domain.accounts import AccountRef
from modelyard.domain.models import ModelSpec
from modelyard.services import models as model_service
from modelyard.store.database import Database

ACCOUNT = AccountRef.parse("sub", "rg", "acct")


def test_twenty_concurrent_registrations_of_one_name_get_versions_1_to_20(
    database: Database, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    artifact = files / "m.pkl"
    artifact.write_bytes(b"same bytes for all")
    settings = Settings(home=tmp_path / "home", allowed_file_roots=[files])
    ctx = build_context(settings, database)
    spec = ModelSpec(name="race", url=artifact.as_uri(), mime_type="application/octet-stream")

    with ThreadPoolExecutor(max_workers=20) as pool:
        models = list(
            pool.map(lambda _: model_service.register_model(ctx, ACCOUNT, spec), range(20))
        )

    assert sorted(m.version for m in models) == list(range(1, 21))
    page = model_service.list_models(
        ctx, ACCOUNT, name="race", tag=None, count=100, skip_token=None
    )
    assert sorted(m.version for m in page.items) == list(range(1, 21))
    assert len({m.id for m in models}) == 20


def test_a_deleted_version_is_never_handed_out_again(database: Database, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "m.pkl").write_bytes(b"x")
    ctx = build_context(Settings(home=tmp_path / "home", allowed_file_roots=[files]), database)
    spec = ModelSpec(name="m", url=(files / "m.pkl").as_uri(), mime_type="a/b")
    first = model_service.register_model(ctx, ACCOUNT, spec)
    second = model_service.register_model(ctx, ACCOUNT, spec)
    model_service.delete_model(ctx, ACCOUNT, second.id)
    third = model_service.register_model(ctx, ACCOUNT, spec)
    assert (first.version, third.version) == (1, 3)
    assert ctx.blobs.exists(first.sha256)  # still used by versions 1 and 3
