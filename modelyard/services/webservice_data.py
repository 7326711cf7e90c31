"""What a service leaves behind for its users: deployments, logs, collected data."""

from __future__ import annotations

import re
from pathlib import Path

from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import Invalid, NotFound
from modelyard.domain.webservices import Deployment
from modelyard.services.context import ServiceContext, existing_account
from modelyard.services.webservices import get_service
from modelyard.store.paging import Page, decode_token

_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})$")
_MAX_READ = 16 * 1024 * 1024


def list_deployments(
    ctx: ServiceContext,
    account: AccountRef,
    *,
    service_id: str | None,
    count: int,
    skip_token: str | None,
) -> Page[Deployment]:
    after = decode_token(skip_token)
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        return uow.deployments.list(account_id, service_id=service_id, after_seq=after, limit=count)


def get_deployment(ctx: ServiceContext, account: AccountRef, deployment_id: str) -> Deployment:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        deployment = uow.deployments.get(account_id, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment '{deployment_id}' does not exist", code="DeploymentNotFound")
    return deployment


def read_logs(ctx: ServiceContext, account: AccountRef, service_id: str, tail: int) -> str:
    """The last `tail` lines of the deployment log and of each replica's log."""
    get_service(ctx, account, service_id)
    folder = ctx.services_root / service_id / "logs"
    parts = []
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else []:
        lines = _tail(path, tail)
        parts.append(f"==> {path.name} <==\n" + "".join(lines))
    return "\n".join(parts)


def read_collected(
    ctx: ServiceContext, account: AccountRef, service_id: str, hour: str | None
) -> bytes:
    """Collected request/response lines of one hour (`YYYY-MM-DDTHH`, UTC), or the latest."""
    get_service(ctx, account, service_id)
    root = ctx.services_root / service_id / "collected"
    if hour is None:
        hours = sorted(root.glob("*/*")) if root.is_dir() else []
        if not hours:
            return b""
        folder = hours[-1]
    else:
        match = _HOUR.match(hour)
        if not match:
            raise Invalid("hour must look like 2026-11-25T08 (UTC)", target="hour")
        folder = root / match.group(1) / match.group(2)
    data = b"".join(path.read_bytes() for path in sorted(folder.glob("*.jsonl")))
    return data[-_MAX_READ:]


def _tail(path: Path, lines: int) -> list[str]:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return text.splitlines(keepends=True)[-lines:]
