"""ICE servers from settings, short-lived TURN REST credentials, and loopback host candidates.

TURN REST credentials (the scheme coturn's ``use-auth-secret`` / ``static-auth-secret`` checks):
``username = "<expiry unix seconds>:<user id>"``,
``credential = base64(HMAC-SHA1(secret, username))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from typing import Any

from classroom.config import Settings

log = logging.getLogger(__name__)

# The URL forms aiortc accepts (RFC 7064 / 7065), so browsers and the server read the same list.
_STUN_URL = re.compile(r"^stuns?:[^?:@/]+(:[0-9]{1,5})?$")
_TURN_URL = re.compile(r"^turns?:[^?:@/]+(:[0-9]{1,5})?(\?transport=(udp|tcp))?$")
LOOPBACK = "127.0.0.1"


def validate_ice_urls(urls: list[str]) -> None:
    """Raise ``ValueError`` naming the first URL that is not a STUN/TURN URL."""
    for url in urls:
        if not (_STUN_URL.match(url) or _TURN_URL.match(url)):
            raise ValueError(
                f"CLASSROOM_ICE_SERVERS: {url!r} is not a stun:, stuns:, turn: or turns: URL "
                "(host[:port][?transport=udp|tcp])"
            )


def turn_credentials(secret: str, user_id: str, expires_at: int) -> tuple[str, str]:
    """``(username, credential)`` for the TURN REST scheme, valid until ``expires_at``."""
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers_for(settings: Settings, user_id: str, now: float) -> list[dict[str, Any]]:
    """ICE servers in browser ``RTCIceServer`` form: STUN URLs in one plain entry, TURN URLs in
    one entry with fresh credentials. TURN URLs are left out when no TURN secret is configured
    (a browser refuses a TURN server without credentials)."""
    stun = [url for url in settings.ice_servers if url.startswith("stun")]
    turn = [url for url in settings.ice_servers if url.startswith("turn")]
    servers: list[dict[str, Any]] = []
    if stun:
        servers.append({"urls": stun})
    if turn and settings.turn_secret:
        expires_at = int(now) + settings.turn_ttl_seconds
        username, credential = turn_credentials(settings.turn_secret, user_id, expires_at)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers


def warn_about_settings(settings: Settings) -> None:
    if any(url.startswith("turn") for url in settings.ice_servers) and not settings.turn_secret:
        log.warning("media: TURN URLs configured without CLASSROOM_TURN_SECRET; they are not used")
    if settings.media_loopback:
        log.warning(
            "media: gathering ICE host candidates on %s (CLASSROOM_MEDIA_LOOPBACK); "
            "only clients on this machine can use them",
            LOOPBACK,
        )


_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def allow_loopback_candidates() -> None:
    """Make aioice also gather a host candidate on 127.0.0.1 (it skips loopback addresses).

    aioice 0.13 has no option for this: ``Connection.gather_candidates`` calls the module
    function ``aioice.ice.get_host_addresses(use_ipv4, use_ipv6)`` which drops ``127.0.0.1``.
    We wrap that function, for the whole process and idempotently. Used for loopback test runs
    and single-machine demos (``CLASSROOM_MEDIA_LOOPBACK``); checked by
    tests/unit/test_media_hooks.py.
    """
    global _original_get_host_addresses
    import aioice.ice

    if _original_get_host_addresses is not None:
        return
    original: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
    _original_get_host_addresses = original

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and LOOPBACK not in addresses:
            addresses = [LOOPBACK, *addresses]
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses
