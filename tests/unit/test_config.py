"""Settings: defaults, the TOML file, GORTC_* overrides, and their errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gortc.config import SECTIONS, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_FILES = [ROOT / "config.toml", ROOT / "gortc" / "config.toml"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gortc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None = None, environ: dict[str, str] | None = None) -> str:
    """The message of the ConfigError loading must raise; checked to be one line."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_without_file_or_environment() -> None:
    config = load_config(None, {})

    assert config == Config()
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.trusted_origins == []
    assert config.auth.signup == "open"
    assert config.limits.enabled is True
    assert config.public_url == "http://127.0.0.1:8080"
    assert config.database_path == Path("data/gortc.db")


def test_values_from_the_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [server]
        port = 9000
        public_url = "https://chat.example.org/"
        trusted_origins = ["https://proxy.example.org"]

        [auth]
        signup = "invite"

        [limits]
        enabled = false
        """,
    )

    config = load_config(path, {})

    assert config.server.port == 9000
    assert config.server.trusted_origins == ["https://proxy.example.org"]
    assert config.auth.signup == "invite"
    assert config.limits.enabled is False
    assert config.public_url == "https://chat.example.org"
    assert config.server.host == "127.0.0.1"  # untouched settings keep their defaults


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n")

    config = load_config(
        path,
        {
            "GORTC_SERVER_PORT": "9100",
            "GORTC_LIMITS_ENABLED": "false",
            "GORTC_SERVER_TRUSTED_ORIGINS": " https://a.example , https://b.example:8443,,",
            "GORTC_MAIL_TIMEOUT": "2.5",
            "PATH": "/usr/bin",
        },
    )

    assert config.server.port == 9100
    assert config.server.host == "0.0.0.0"
    assert config.limits.enabled is False
    assert config.server.trusted_origins == ["https://a.example", "https://b.example:8443"]
    assert config.mail.timeout == 2.5


def test_an_empty_list_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\ntrusted_origins = ['https://a.example']\n")

    config = load_config(path, {"GORTC_SERVER_TRUSTED_ORIGINS": ""})

    assert config.server.trusted_origins == []


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ("[server]\nport = 70000", "server.port"),
        ("[server]\nport = 'eighty'", "server.port"),
        ("[server]\nlog_level = 'verbose'", "server.log_level"),
        ("[auth]\nsignup = 'sometimes'", "auth.signup"),
        ("[auth]\nbcrypt_rounds = 3", "auth.bcrypt_rounds"),
        ("[database]\nreaders = 0", "database.readers"),
        ("[mail]\nsmtp_security = 'ssl'", "mail.smtp_security"),
        ("[limits]\nenabled = 'maybe'", "limits.enabled"),
        ("server = 5", "server"),
    ],
)
def test_an_invalid_value_in_the_file_names_the_setting(
    tmp_path: Path, toml: str, setting: str
) -> None:
    message = config_error(write(tmp_path, toml))

    assert message.startswith(f"config: {setting}: ")
    assert "GORTC_" not in message


@pytest.mark.parametrize(
    ("toml", "setting"),
    [("[server]\nprot = 8080", "server.prot"), ("[sever]\nport = 8080", "sever")],
)
def test_an_unknown_key_in_the_file_is_refused(tmp_path: Path, toml: str, setting: str) -> None:
    message = config_error(write(tmp_path, toml))

    assert message == f"config: {setting}: unknown setting"


@pytest.mark.parametrize(
    ("name", "value", "setting"),
    [
        ("GORTC_SERVER_PORT", "eighty", "server.port"),
        ("GORTC_SERVER_PORT", "-1", "server.port"),
        ("GORTC_LIMITS_ENABLED", "perhaps", "limits.enabled"),
        ("GORTC_AUTH_ACCESS_TOKEN_TTL", "5", "auth.access_token_ttl"),
        ("GORTC_SERVER_SHUTDOWN_TIMEOUT", "0", "server.shutdown_timeout"),
    ],
)
def test_an_invalid_value_from_the_environment_names_the_variable(
    name: str, value: str, setting: str
) -> None:
    message = config_error(environ={name: value})

    assert message.startswith(f"config: {setting}: ")
    assert message.endswith(f"(from {name})")


def test_a_bad_trusted_origin_from_the_environment_names_setting_and_variable() -> None:
    message = config_error(environ={"GORTC_SERVER_TRUSTED_ORIGINS": "proxy.example.org"})

    assert message.startswith("config: server.trusted_origins: ")
    assert message.endswith("(from GORTC_SERVER_TRUSTED_ORIGINS)")


def test_a_bad_trusted_origin_in_the_file_names_the_setting(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "[server]\ntrusted_origins = ['proxy.example.org']"))

    assert message.startswith("config: server.trusted_origins: ")


def test_a_bad_trusted_origin_is_refused() -> None:
    message = config_error(environ={"GORTC_SERVER_TRUSTED_ORIGINS": "proxy.example.org"})

    assert "'proxy.example.org' must start with http:// or https://" in message


def test_an_unknown_variable_of_a_known_section_is_refused() -> None:
    message = config_error(environ={"GORTC_SERVER_PROT": "9000"})

    assert "GORTC_SERVER_PROT" in message
    assert "[server]" in message


def test_an_unknown_variable_of_an_unknown_section_is_refused() -> None:
    message = config_error(environ={"GORTC_SERVR_PORT": "9000"})

    assert "GORTC_SERVR_PORT" in message


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"

    message = config_error(missing)

    assert str(missing) in message
    assert "does not exist" in message


@pytest.mark.parametrize(
    "text",
    ["[server\nport = 1", "[server]\nport = ", "[server]\nport = 1\nport = 2", "port: 1"],
)
def test_invalid_toml_is_reported(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    message = config_error(path)

    assert message.startswith(f"config file {path} is not valid TOML: ")


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[server]\nhost = 'caf\u00e9'\n".encode("latin-1"))

    message = config_error(path)

    assert message.startswith(f"config file {path} cannot be read: ")


# -- config.toml documents every setting --------------------------------------


def _documented_lines(path: Path) -> dict[tuple[str, str], int]:
    """(section, key) -> index of the line that sets it."""
    found: dict[tuple[str, str], int] = {}
    section = ""
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        header = re.fullmatch(r"\[(\w+)\]\s*", line)
        assignment = re.match(r"(\w+)\s*=", line)
        if header:
            section = header.group(1)
        elif assignment:
            found[(section, assignment.group(1))] = index
    return found


def _model_defaults() -> dict[tuple[str, str], Any]:
    return {
        (section, key): field.get_default(call_default_factory=True)
        for section, model in SECTIONS.items()
        for key, field in model.model_fields.items()
    }


@pytest.mark.parametrize("path", DOCUMENTED_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_config_toml_shows_every_setting_with_its_default(path: Path) -> None:
    documented = tomllib.loads(path.read_text(encoding="utf-8"))
    file_values = {
        (section, key): value
        for section, values in documented.items()
        for key, value in values.items()
    }
    defaults = _model_defaults()

    assert set(SECTIONS) == set(Config.model_fields)
    assert sorted(set(defaults) - set(file_values)) == [], "settings missing from the file"
    assert sorted(set(file_values) - set(defaults)) == [], "keys the model does not have"
    for setting, default in defaults.items():
        value = file_values[setting]
        assert (type(value), value) == (type(default), default), setting


@pytest.mark.parametrize("path", DOCUMENTED_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_config_toml_explains_every_setting_in_a_comment_above_it(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    located = _documented_lines(path)

    assert set(located) == set(_model_defaults())
    for (section, key), index in located.items():
        above = lines[index - 1].strip()
        assert above.startswith("#") and above.lstrip("# "), f"[{section}] {key} has no comment"


@pytest.mark.parametrize("path", DOCUMENTED_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_config_toml_loads_to_the_defaults(path: Path) -> None:
    assert load_config(path, {}) == Config()


def test_a_short_configured_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"GORTC_AUTH_SECRET": "short"})
    assert "auth.secret" in str(caught.value)
    assert "GORTC_AUTH_SECRET" in str(caught.value)


def test_the_object_store_settings_from_the_environment() -> None:
    config = load_config(
        None,
        {
            "GORTC_STORAGE_URL": "s3://team-files",
            "GORTC_STORAGE_ENDPOINT": "https://fra1.digitaloceanspaces.com/",
            "GORTC_STORAGE_REGION": "fra1",
        },
    )
    assert config.storage.bucket == "team-files"
    assert config.storage.endpoint == "https://fra1.digitaloceanspaces.com"
    assert config.storage.region == "fra1"
    assert load_config(None, {}).storage.url == ""  # files on disk, the default


@pytest.mark.parametrize("url", ["team-files", "s3://", "s3://bucket/folder", "gs://bucket"])
def test_a_storage_url_must_name_one_bucket(url: str) -> None:
    message = config_error(environ={"GORTC_STORAGE_URL": url})
    assert "GORTC_STORAGE_URL" in message and "s3://bucket" in message
