"""What differs between the two Model Management route families.

The account API (`.../accounts/{a}`, api-version 2017-09-01-preview) and the older
hosting-account API (`.../hostingAccounts/{h}`, 2017-06-01-privatepreview) serve the
same resources from one namespace; they differ only in these knobs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MmsFamily:
    segment: str  # "accounts" or "hostingAccounts"
    api_versions: frozenset[str]
    register_status: int  # the 2017 Azure CLI wants 200 on accounts; the 2017-06 seed says 201
    list_is_bare_array: bool  # the 2017-06 seed lists as a JSON array, paged by Link header
    tag: str

    @property
    def api_version(self) -> str:
        """The version this server writes into links it hands out."""
        return max(self.api_versions)

    @property
    def prefix(self) -> str:
        return (
            "/api/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/"
            f"{self.segment}/{{accountName}}"
        )


ACCOUNTS = MmsFamily(
    segment="accounts",
    api_versions=frozenset({"2017-09-01-preview"}),
    register_status=200,
    list_is_bare_array=False,
    tag="Model Management (accounts)",
)

HOSTING_ACCOUNTS = MmsFamily(
    segment="hostingAccounts",
    api_versions=frozenset({"2017-06-01-privatepreview"}),
    register_status=201,
    list_is_bare_array=True,
    tag="Model Management 2017-06 (hostingAccounts)",
)
