"""Name rules shared by versioned resources (models, manifests, images, asset ids)."""

from __future__ import annotations

import re

from modelyard.domain.errors import Invalid

NAME_MAX = 32
_NAME = re.compile(r"^[A-Za-z0-9-]+$")


def validate_name(name: str, *, field: str = "name", limit: int = NAME_MAX) -> None:
    """Alphanumerics and hyphens, at most `limit` characters (the seeds' rule)."""
    if not name:
        raise Invalid(f"{field} is required", target=field)
    if len(name) > limit:
        raise Invalid(
            f"{field} '{name}' is {len(name)} characters; at most {limit} are allowed",
            target=field,
        )
    if not _NAME.match(name):
        raise Invalid(
            f"{field} '{name}' may contain only letters, digits and hyphens", target=field
        )


def validate_length(value: str, limit: int, field: str) -> None:
    if len(value) > limit:
        raise Invalid(
            f"{field} is {len(value)} characters; at most {limit} are allowed", target=field
        )
