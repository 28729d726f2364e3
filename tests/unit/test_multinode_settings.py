"""Settings of several processes: loud when wrong, one line naming the variable."""

from __future__ import annotations

import pytest

from classroom.config import ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings(require_secret=False)
    assert (settings.redis_prefix, settings.redis_pool_size) == ("classroom:", 20)
    assert (settings.heartbeat_interval, settings.heartbeat_ttl) == (1.0, 3.0)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert load_settings(require_secret=False, public_url="https://c2.example/").base_url == (
        "https://c2.example"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"heartbeat_interval": 2.0, "heartbeat_ttl": 2.0}, "CLASSROOM_HEARTBEAT_TTL: must be"),
        ({"redis_pool_size": 1}, "CLASSROOM_REDIS_POOL_SIZE"),
        ({"redis_prefix": ""}, "CLASSROOM_REDIS_PREFIX"),
    ],
)
def test_wrong_values_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(require_secret=False, **overrides)
