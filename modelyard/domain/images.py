"""The image: a build of a manifest, whose state is its build operation's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.errors import Invalid
from modelyard.domain.naming import validate_length, validate_name

DESCRIPTION_MAX = 512
IMAGE_TYPES = ("Docker",)


@dataclass(frozen=True)
class RegistryInfo:
    """Where to push when a container engine exists. The password is write-only."""

    location: str | None = None
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    name: str
    manifest_id: str
    image_type: str = "Docker"
    description: str = ""
    compute_resource_id: str | None = None
    registry: RegistryInfo = RegistryInfo()

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_length(self.description, DESCRIPTION_MAX, "description")
        if self.image_type not in IMAGE_TYPES:
            raise Invalid(
                f"imageType '{self.image_type}' is not supported; use Docker", target="imageType"
            )
        if not self.manifest_id:
            raise Invalid("manifestId is required", target="manifestId")


@dataclass(frozen=True)
class Image:
    id: str
    account_id: int
    name: str
    version: int
    description: str
    image_type: str
    manifest_id: str
    compute_resource_id: str | None
    operation_id: str
    registry_location: str | None
    image_location: str | None
    environment_sha256: str | None
    created_at: datetime
