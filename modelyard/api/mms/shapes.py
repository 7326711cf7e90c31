"""Model and upload shapes of the Model Management API, and what all shapes share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.domain.models import Model, ModelSpec
from modelyard.store.uploads import Upload


class ModelRequest(BaseModel):
    """Register-model body. Unknown fields are ignored, as Azure's service did."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Alphanumerics and hyphens, at most 32 characters.")
    url: str = Field(description="http(s), file:// (allowed roots) or upload://<id>.")
    mimeType: str = Field(description="Media type of the model content.")
    tags: list[str] | None = Field(None, description="Alphanumeric, each at most 30 characters.")
    description: str | None = Field(None, description="At most 200 Unicode characters.")
    unpack: bool = Field(False, description="Unpack a zip or tar archive safely.")

    @field_validator("unpack", mode="before")
    @classmethod
    def _lenient_bool(cls, value: Any) -> Any:
        # The 2017-06 seed shows "unpack": "<unpack if model is zipped>" as a string.
        return False if value is None or value == "" else value

    def to_spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.name,
            url=self.url,
            mime_type=self.mimeType,
            tags=tuple(self.tags or ()),
            description=self.description or "",
            unpack=self.unpack,
        )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def model_json(model: Model, model_uri: str) -> dict[str, Any]:
    """The seed's Model plus what modelyard adds: sha256, size and where to download it."""
    return {
        "id": model.id,
        "name": model.name,
        "version": model.version,
        "tags": list(model.tags),
        "description": model.description,
        "url": model.url,
        "mimeType": model.mime_type,
        "unpack": model.unpack,
        "createdAt": iso(model.created_at),
        "sha256": model.sha256,
        "size": model.size,
        "contentUri": f"{model_uri}/content",
    }


def upload_json(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "url": f"upload://{upload.id}",
        "sha256": upload.sha256,
        "size": upload.size,
        "fileName": upload.file_name,
        "createdAt": iso(upload.created_at),
    }
