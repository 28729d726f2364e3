"""ICE server configuration and TURN REST credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from classroom.config import Settings
from classroom.media.gateway import AiortcMediaGateway
from classroom.media.ice import ice_servers_for, turn_credentials, validate_ice_urls

NOW = 1_700_000_000.5


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": "x" * 32}
    values.update(overrides)
    return Settings(**values)


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    username, credential = turn_credentials("s3cret", "student-1", 1_700_003_600)
    assert username == "1700003600:student-1"
    expected = hmac.new(b"s3cret", b"1700003600:student-1", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    # a known vector, so a change of hash or encoding cannot pass unnoticed
    assert credential == base64.b64encode(expected).decode()
    assert len(base64.b64decode(credential)) == 20


def test_ice_servers_for_browsers() -> None:
    config = settings(
        ice_servers="stun:stun.example.test:3478,turn:turn.example.test?transport=udp,"
        "turns:turn.example.test:5349?transport=tcp",
        turn_secret="s3cret",
        turn_ttl_seconds=600,
    )
    servers = ice_servers_for(config, "student-1", NOW)
    assert servers[0] == {"urls": ["stun:stun.example.test:3478"]}
    turn = servers[1]
    assert turn["urls"] == [
        "turn:turn.example.test?transport=udp",
        "turns:turn.example.test:5349?transport=tcp",
    ]
    assert turn["username"] == "1700000600:student-1"  # now + TTL, whole seconds
    assert (turn["username"], turn["credential"]) == turn_credentials(
        "s3cret", "student-1", 1_700_000_600
    )
    assert len(servers) == 2


def test_turn_urls_need_a_secret() -> None:
    config = settings(ice_servers="stun:stun.example.test,turn:turn.example.test")
    assert ice_servers_for(config, "u", NOW) == [{"urls": ["stun:stun.example.test"]}]
    assert ice_servers_for(settings(), "u", NOW) == []


@pytest.mark.parametrize(
    "url", ["http://example.test", "stun:", "turn:host?transport=sctp", "stun:host:port", "x"]
)
def test_bad_ice_urls_are_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError, match="CLASSROOM_ICE_SERVERS"):
        validate_ice_urls([url])
    with pytest.raises(ValueError, match="CLASSROOM_ICE_SERVERS"):
        AiortcMediaGateway(settings(ice_servers=url))


def test_server_connections_get_an_explicit_list_never_the_public_default() -> None:
    assert AiortcMediaGateway(settings())._configuration().iceServers == []

    gateway = AiortcMediaGateway(
        settings(ice_servers="stun:stun.example.test,turn:turn.example.test", turn_secret="s3cret")
    )
    servers = gateway._configuration().iceServers
    assert servers is not None
    assert [s.urls for s in servers] == [["stun:stun.example.test"], ["turn:turn.example.test"]]
    assert servers[1].username is not None and servers[1].username.endswith(":classroom-server")
    assert servers[1].credential
    browser = gateway.ice_servers("tutor-1")
    assert browser[1]["username"].endswith(":tutor-1")
