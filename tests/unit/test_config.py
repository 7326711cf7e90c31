"""Settings come from flags, then the environment, then a TOML file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.config import Settings


def test_defaults_keep_everything_under_the_home_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "h"))
    settings = Settings()
    assert settings.home == tmp_path / "h"
    assert settings.host == "127.0.0.1"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'h' / 'modelyard.db'}"
    assert settings.admin_token_path == tmp_path / "h" / "admin-token"


def test_a_toml_file_in_home_is_read_and_env_and_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text('port = 9001\nhost = "0.0.0.0"\nlog_format = "json"\n')
    monkeypatch.setenv("MODELYARD_HOST", "127.0.0.2")
    settings = Settings(home=tmp_path)
    assert settings.port == 9001
    assert settings.host == "127.0.0.2"
    assert settings.log_format == "json"
    assert Settings(home=tmp_path, port=9002).port == 9002


def test_an_explicit_config_file_is_used(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text("allow_private_networks = false\n")
    assert Settings(home=tmp_path / "h", config_file=config).allow_private_networks is False


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        Settings(home=tmp_path)
