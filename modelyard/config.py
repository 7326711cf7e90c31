"""Server settings: declared once, validated once, documented on the field.

Precedence (highest first): explicit keyword arguments (the CLI's flags), environment
variables prefixed `MODELYARD_`, the TOML file (`--config`, or `<home>/config.toml`
when present), then the embedded defaults below. Built once in `modelyard serve` and
passed down; never a module global.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_PORT = 8700


def default_home() -> Path:
    """`$MODELYARD_HOME`, else `./.modelyard` relative to where the server starts."""
    return Path(os.environ.get("MODELYARD_HOME", ".modelyard")).absolute()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="Data directory.")
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store; default SQLite in the data dir. "
        "Use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL clients reach the server at, used in nextLink and "
        "Operation-Location; default: taken from each request's Host header.",
    )
    allowed_file_roots: list[Path] = Field(
        default_factory=lambda: [Path.cwd()],
        description="file:// URLs are fetched only from under these directories.",
    )
    allow_private_networks: bool = Field(
        True,
        description="Fetch http(s) URLs on loopback and private ranges. Link-local "
        "addresses (cloud metadata endpoints) are always refused.",
    )
    fetch_timeout_s: float = Field(60.0, gt=0, description="Per-request timeout for URL fetches.")
    max_artifact_bytes: int = Field(
        10 * 1024**3, gt=0, description="Largest model or asset accepted, in bytes."
    )
    unpack_max_bytes: int = Field(4 * 1024**3, gt=0, description="Cap on unpacked size.")
    unpack_max_files: int = Field(100_000, gt=0, description="Cap on files in an archive.")
    unpack_max_ratio: float = Field(
        200.0, gt=1, description="Cap on unpacked size divided by archive size (zip bombs)."
    )
    strict_accounts: bool = Field(
        False, description="Refuse writes to accounts that were not created beforehand."
    )
    workers: int = Field(
        2,
        ge=0,
        le=64,
        description="Embedded workers running builds; 0 leaves them to "
        "`modelyard worker` processes.",
    )
    service_workers: int = Field(
        2, ge=1, le=64, description="Server threads that create, update and roll services."
    )
    service_host: str = Field(
        "127.0.0.1", description="Interface services listen on; their scoring URIs use it."
    )
    service_port_start: int = Field(5100, ge=1, le=65535, description="First service port.")
    service_port_end: int = Field(5999, ge=1, le=65535, description="Last service port.")
    deploy_timeout_s: float = Field(
        300.0, gt=0, description="How long new replicas may take to become ready."
    )
    drain_s: float = Field(
        30.0, ge=0, description="How long a stopping replica may finish its requests."
    )
    operation_lease_s: float = Field(
        15.0,
        gt=1,
        description="How long a worker's claim on an operation lasts without a "
        "heartbeat; a killed worker's operation is taken up again after this.",
    )
    resolution_ttl_s: float = Field(
        24 * 3600,
        ge=0,
        description="Reuse the resolved lock of identical requirements for "
        "this long (so cached rebuilds need no package index); 0 always resolves afresh.",
    )
    page_size_default: int = Field(100, gt=0, le=1000, description="List page size without count.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field("console", description="console (human) or json.")
    config_file: Path | None = Field(None, description="TOML file with any of these settings.")

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("console", "json"):
            raise ValueError("log_format must be 'console' or 'json'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file_from(init_settings(), env_settings())
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'modelyard.db'}"

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"


def _toml_file_from(*layers: dict[str, Any]) -> Path | None:
    """Find the TOML file before the other sources are read: explicit, else home's."""
    for layer in layers:
        if layer.get("config_file"):
            return Path(layer["config_file"])
    home: Any = None
    for layer in layers:
        if layer.get("home"):
            home = layer["home"]
            break
    candidate = Path(home) if home else default_home()
    candidate = candidate / "config.toml"
    return candidate if candidate.is_file() else None
