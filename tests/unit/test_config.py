import pytest

from classroom.config import ConfigError, load_settings


def test_defaults_use_embedded_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CLASSROOM_DATABASE_URL", "CLASSROOM_REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./classroom.db"
    assert settings.redis_url is None
    assert settings.is_sqlite


def test_bad_database_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", "mysql://root@localhost/x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith("CLASSROOM_DATABASE_URL:")
    assert "\n" not in str(info.value)


def test_garbage_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", "::not a url::")
    with pytest.raises(ConfigError, match="^CLASSROOM_DATABASE_URL: "):
        load_settings()


def test_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLASSROOM_JWT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="^CLASSROOM_JWT_SECRET: required"):
        load_settings()
    assert load_settings(require_secret=False).jwt_secret is None


def test_lists_and_levels_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv("CLASSROOM_ALLOWED_ORIGINS", "https://a.test, https://b.test")
    monkeypatch.setenv("CLASSROOM_LOG_LEVEL", "debug")
    monkeypatch.setenv("CLASSROOM_LOG_FORMAT", "JSON")
    settings = load_settings()
    assert settings.allowed_origins == ["https://a.test", "https://b.test"]
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLASSROOM_LOG_FORMAT", "xml"),
        ("CLASSROOM_REDIS_URL", "http://localhost"),
        ("CLASSROOM_PORT", "99999"),
        ("CLASSROOM_RECONNECT_GRACE", "-1"),
    ],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_settings()


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv("CLASSROOM_PORT", "9000")
    assert load_settings(port=9100, host=None).port == 9100
