"""Settings precedence: embedded defaults < TOML file < EVGI_* variables < explicit overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError as PydanticValidationError

from evgi.config import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EVGI_* variable or ./evgi.toml of the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("EVGI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file_and_no_environment(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == Path("evgi-data")
    assert settings.ledger == "local"
    assert settings.chain_id == 1337
    assert (settings.http_port, settings.ocpp_port, settings.grid_port) == (8000, 9000, 8443)
    assert settings.database_url is None
    assert settings.db_url == f"sqlite:///{tmp_path / 'evgi-data' / 'evgi.db'}"
    assert settings.keys_dir == Path("evgi-data") / "keys"


def test_evgi_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write_toml(tmp_path / "evgi.toml", 'http_port = 8100\nhttp_host = "0.0.0.0"\n')
    settings = load_settings()
    assert settings.http_port == 8100
    assert settings.http_host == "0.0.0.0"


def test_evgi_config_names_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_toml(tmp_path / "evgi.toml", "http_port = 8100\n")
    other = write_toml(
        tmp_path / "site.toml",
        'http_port = 8200\nchain_id = 246\ndata_dir = "/srv/evgi"\n'
        'database_url = "postgresql://evgi@db/evgi"\n',
    )
    monkeypatch.setenv("EVGI_CONFIG", str(other))
    settings = load_settings()
    assert settings.http_port == 8200
    assert settings.chain_id == 246
    assert settings.data_dir == Path("/srv/evgi")
    assert settings.db_url == "postgresql://evgi@db/evgi"


def test_environment_beats_file_and_overrides_beat_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "site.toml", "http_port = 8200\nocpp_port = 9200\n")
    monkeypatch.setenv("EVGI_CONFIG", str(config))
    monkeypatch.setenv("EVGI_HTTP_PORT", "8300")
    monkeypatch.setenv("EVGI_CHAIN_ID", "73799")
    settings = load_settings()
    assert settings.http_port == 8300  # environment over file
    assert settings.ocpp_port == 9200  # file over default
    assert settings.chain_id == 73799  # environment over default

    overridden = load_settings(http_port=8400, chain_id=None)
    assert overridden.http_port == 8400  # explicit (CLI) over environment
    assert overridden.chain_id == 73799  # None means "not given", not "unset"


def test_unknown_keys_in_the_file_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "site.toml", "htp_port = 8100\n")
    monkeypatch.setenv("EVGI_CONFIG", str(config))
    with pytest.raises(PydanticValidationError, match="htp_port"):
        load_settings()


@pytest.mark.parametrize("url", ["mysql://evgi@db/evgi", "mongodb://db", "evgi.db"])
def test_bad_database_url_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    with pytest.raises(PydanticValidationError, match="database_url"):
        Settings(database_url=url)
    monkeypatch.setenv("EVGI_DATABASE_URL", url)
    with pytest.raises(PydanticValidationError, match="database_url"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("EVGI_CHAIN_ID", "0"), ("EVGI_LEDGER", "bitcoin"), ("EVGI_BLOCK_MAX_TRANSACTIONS", "0")],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(PydanticValidationError):
        load_settings()


def test_sqlite_url_is_kept_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVGI_DATABASE_URL", "sqlite:////var/lib/evgi/evgi.db")
    assert load_settings().db_url == "sqlite:////var/lib/evgi/evgi.db"
