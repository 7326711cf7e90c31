"""The registered model: an immutable, versioned artifact, and the seed's validation rules.

Rules (from the Model Management seeds): name is alphanumerics and hyphens, at most 32
characters; each tag alphanumeric, at most 30 characters; description at most 200
Unicode characters (empty when absent); url and mimeType required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from modelyard.domain.errors import Invalid
from modelyard.domain.naming import validate_length, validate_name

TAG_MAX = 30
DESCRIPTION_MAX = 200
MIME_MAX = 255
URL_MAX = 4096

_TAG = re.compile(r"^[A-Za-z0-9]+$")
_MIME = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")


@dataclass(frozen=True)
class ModelSpec:
    """What a user asks to register, validated; the server adds the rest."""

    name: str
    url: str
    mime_type: str
    tags: tuple[str, ...] = ()
    description: str = ""
    unpack: bool = False

    def __post_init__(self) -> None:
        validate_name(self.name)
        for tag in self.tags:
            validate_tag(tag)
        validate_length(self.description, DESCRIPTION_MAX, "description")
        if not self.url or not self.url.strip():
            raise Invalid("url is required", target="url")
        if len(self.url) > URL_MAX:
            raise Invalid(f"url is longer than {URL_MAX} characters", target="url")
        if not self.mime_type or not self.mime_type.strip():
            raise Invalid("mimeType is required", target="mimeType")
        if len(self.mime_type) > MIME_MAX or not _MIME.match(self.mime_type):
            raise Invalid(
                f"mimeType '{self.mime_type}' is not a media type such as application/octet-stream",
                target="mimeType",
            )


def validate_tag(tag: str) -> None:
    if not tag:
        raise Invalid("tags must not be empty strings", target="tags")
    if len(tag) > TAG_MAX:
        raise Invalid(
            f"tag '{tag}' is {len(tag)} characters; at most {TAG_MAX} are allowed",
            target="tags",
        )
    if not _TAG.match(tag):
        raise Invalid(f"tag '{tag}' must be alphanumeric", target="tags")


@dataclass(frozen=True)
class Model:
    """A registered model version. Never changes after registration."""

    id: str
    account_id: int
    name: str
    version: int
    url: str
    mime_type: str
    unpack: bool
    description: str
    created_at: datetime
    sha256: str
    size: int
    tags: tuple[str, ...] = field(default=())
    file_name: str = ""
