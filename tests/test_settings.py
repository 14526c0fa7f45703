"""Settings: flags over environment over greenai.toml, secrets only from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings


def test_environment_mapping_is_read_without_touching_os_environ(tmp_path: Path) -> None:
    settings = load_settings(
        {"GREENAI_THRESHOLD": "150", "GREENAI_PROVIDER": "uk:13,egrid:RFCE"},
        config_file=None,
        home=tmp_path,
    )
    assert settings.threshold == 150
    assert settings.provider == "uk:13,egrid:RFCE"
    assert settings.evidence_path == tmp_path / "evidence.csv"


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "greenai.toml"
    toml.write_text("threshold = 90\ndefer_seconds = 60\ncheck_interval = 30\n")
    env = {"GREENAI_DEFER_SECONDS": "120"}
    settings = load_settings(env, config_file=toml, check_interval=None)
    assert settings.threshold == 90  # file
    assert settings.defer_seconds == 120  # env beats file
    assert load_settings(env, config_file=toml, defer_seconds=5).defer_seconds == 5  # flag wins


def test_secrets_in_the_config_file_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "greenai.toml"
    toml.write_text('api_token = "abc"\n')
    with pytest.raises(ConfigError, match="secrets"):
        load_settings({}, config_file=toml)


def test_secret_files_are_read_and_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    settings = load_settings(
        {"WATTTIME_USERNAME": "alice", "WATTTIME_PASSWORD_FILE": str(secret)}, config_file=None
    )
    assert settings.watttime_password is not None
    assert settings.watttime_password.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WATTTIME_PASSWORD_FILE"):
        load_settings({"WATTTIME_PASSWORD_FILE": str(tmp_path / "missing")}, config_file=None)


def test_invalid_values_name_the_field() -> None:
    with pytest.raises(ConfigError, match="defer_seconds"):
        load_settings({"GREENAI_DEFER_SECONDS": "-1"}, config_file=None)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings({}, config_file=tmp_path / "nope.toml")


def test_a_file_that_is_not_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    toml = tmp_path / "greenai.toml"
    toml.write_text('provider = "uk"\nthreshold = \n')
    with pytest.raises(ConfigError, match=r"greenai.toml: line 2, column 13: invalid value"):
        load_settings({}, config_file=toml)


def test_a_misspelt_key_in_the_file_suggests_the_setting(tmp_path: Path) -> None:
    toml = tmp_path / "greenai.toml"
    toml.write_text("threshhold = 100\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting 'threshhold' \(did you mean 'threshold'\?\)"
    ):
        load_settings({}, config_file=toml)
    toml.write_text("zzzz = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'zzzz' \(not a greenai setting\)"):
        load_settings({}, config_file=toml)
