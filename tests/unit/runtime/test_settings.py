"""The replica's environment variables: defaults, parsing, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.domain.errors import Invalid
from modelyard.runtime.settings import RuntimeSettings


def test_defaults_without_any_variable() -> None:
    settings = RuntimeSettings.from_env({})
    assert settings == RuntimeSettings()
    assert settings.keys_file is None
    assert settings.max_concurrent == 32
    assert settings.batch_max_size == 32
    assert settings.batch_max_wait_ms == 2.0
    assert settings.drain_s == 30.0
    assert not settings.data_collection
    assert not settings.app_insights
    assert not settings.pdeathsig


def test_every_variable_is_read() -> None:
    settings = RuntimeSettings.from_env(
        {
            "MODELYARD_KEYS_FILE": "/k.json",
            "MODELYARD_MAX_CONCURRENT": "4",
            "MODELYARD_BATCH_MAX_SIZE": "8",
            "MODELYARD_BATCH_MAX_WAIT_MS": "0.5",
            "MODELYARD_DATA_COLLECTION": "1",
            "MODELYARD_APP_INSIGHTS": "true",
            "MODELYARD_PDEATHSIG": "yes",
            "MODELYARD_DRAIN_S": "3",
        }
    )
    assert settings == RuntimeSettings(
        keys_file=Path("/k.json"),
        max_concurrent=4,
        batch_max_size=8,
        batch_max_wait_ms=0.5,
        data_collection=True,
        app_insights=True,
        pdeathsig=True,
        drain_s=3.0,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODELYARD_MAX_CONCURRENT", "many"),
        ("MODELYARD_MAX_CONCURRENT", "0"),
        ("MODELYARD_BATCH_MAX_WAIT_MS", "-1"),
        ("MODELYARD_DATA_COLLECTION", "maybe"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(Invalid) as caught:
        RuntimeSettings.from_env({name: value})
    assert caught.value.target == name
    assert name in caught.value.message
