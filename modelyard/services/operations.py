"""Operation use cases: show one, cancel one."""

from __future__ import annotations

from modelyard.domain.accounts import AccountRef
from modelyard.domain.errors import NotFound
from modelyard.domain.operations import Operation
from modelyard.services.context import ServiceContext, existing_account


def get_operation(ctx: ServiceContext, account: AccountRef, operation_id: str) -> Operation:
    with ctx.read() as uow:
        account_id = existing_account(uow, account)
        operation = uow.operations.get(account_id, operation_id)
    if operation is None:
        raise NotFound(
            f"operation '{operation_id}' does not exist in account {account.scope_key}",
            code="OperationNotFound",
        )
    return operation


def cancel_operation(ctx: ServiceContext, account: AccountRef, operation_id: str) -> Operation:
    """Ask for cancellation: a queued operation ends at once, a running one within ~1 s."""
    get_operation(ctx, account, operation_id)
    with ctx.write() as uow:
        uow.operations.request_cancel(operation_id)
        uow.commit()
    return get_operation(ctx, account, operation_id)
