"""The account namespace: one `(subscriptionId, resourceGroup, name)` triple.

An MMS account, a hosting account, an ML workspace and a Cognitive Services account
with the same triple are one namespace. Resource group names are case-insensitive
(as in Azure), so the key folds them to lower case; the other parts keep their case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.domain.errors import Invalid

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$")


@dataclass(frozen=True)
class AccountRef:
    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, subscription_id: str, resource_group: str, name: str) -> AccountRef:
        for field, value in (
            ("subscriptionId", subscription_id),
            ("resourceGroupName", resource_group),
            ("accountName", name),
        ):
            if not _PART.match(value):
                raise Invalid(
                    f"{field} '{value}' must be 1-90 letters, digits, '.', '_', '-', '(' or ')'",
                    target=field,
                )
        return cls(subscription_id, resource_group.lower(), name)

    @property
    def scope_key(self) -> str:
        """The form token scopes are written in: `subscription/resourcegroup/account`."""
        return f"{self.subscription_id}/{self.resource_group}/{self.name}"
