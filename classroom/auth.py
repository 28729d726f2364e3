"""Identity from JWTs signed by the tutoring platform (HS256, ``CLASSROOM_JWT_SECRET``)."""

from __future__ import annotations

import binascii
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_decode, base64url_encode

from classroom.errors import Unauthenticated

Role = Literal["tutor", "student", "parent", "admin"]
ROLES: tuple[Role, ...] = ("tutor", "student", "parent", "admin")
ALGORITHM = "HS256"
CALENDAR_PURPOSE = "calendar"


class _PreparedHMAC(HMACAlgorithm):
    """HS256 with each secret prepared once. PyJWT prepares the key on every decode and encode:
    its checks that an HMAC secret is not an asymmetric key or a JWK (a JSON parse and two DER
    parses) cost a quarter of a decode, on every authenticated connect and request. The checks
    still run, once per secret; a secret they refuse is refused every time, as before."""

    MAX_SECRETS = 16

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        raw = key.encode() if isinstance(key, str) else key
        prepared = self._prepared.get(raw)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) >= self.MAX_SECRETS:
                self._prepared.clear()
            self._prepared[raw] = prepared
        return prepared


# PyJWT's registry (its public API for algorithms): the module-level encode and decode below use it
jwt.unregister_algorithm(ALGORITHM)
jwt.register_algorithm(ALGORITHM, _PreparedHMAC())

# The PyJWT whose segment check ``_decode_segment`` replaces (tests/unit/test_auth.py compares the
# two on every kind of segment, and fails when another version is installed).
PINNED_PYJWT = "2.15.1"
PYJWT_DECODE_SEGMENT = PyJWS._decode_base64url_segment
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _decode_segment(segment: bytes, name: str) -> bytes:
    """PyJWT's ``PyJWS._decode_base64url_segment`` with the same checks and errors, the alphabet
    checked by one regular expression instead of a generator over every byte: that loop was
    about 40% of a token's decode (12 of 30 µs, on every authenticated connect and request)."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4 != 0):
        raise jwt.DecodeError(f"Invalid {name} padding")
    if len(stripped) % 4 == 1 or _BASE64URL.fullmatch(stripped) is None:
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64url_decode(stripped)
    except (TypeError, binascii.Error) as err:
        raise jwt.DecodeError(f"Invalid {name} padding") from err
    if base64url_encode(decoded) != stripped:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


if jwt.__version__ == PINNED_PYJWT:  # another version keeps its own check
    PyJWS._decode_base64url_segment = staticmethod(_decode_segment)  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    role: Role
    name: str
    email: str | None = None
    children: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenCodec:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a JWT secret is required")
        self._secret = secret

    def encode(
        self,
        sub: str,
        role: Role,
        name: str,
        email: str | None = None,
        children: list[str] | tuple[str, ...] = (),
        ttl_seconds: int = 3600,
    ) -> str:
        claims: dict[str, Any] = {
            "sub": sub,
            "role": role,
            "name": name,
            "exp": int(time.time()) + ttl_seconds,
        }
        if email:
            claims["email"] = email
        if children:
            claims["children"] = list(children)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def encode_calendar(self, identity: Identity, ttl_seconds: int) -> str:
        """A long-lived token that opens the caller's calendar feed and nothing else."""
        claims: dict[str, Any] = {
            "sub": identity.user_id,
            "role": identity.role,
            "name": identity.name,
            "exp": int(time.time()) + ttl_seconds,
            "purpose": CALENDAR_PURPOSE,
        }
        if identity.children:
            claims["children"] = list(identity.children)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_calendar(self, token: object) -> Identity:
        """Accept a calendar token (from ``encode_calendar``) only."""
        claims = self._claims(token)
        if claims.get("purpose") != CALENDAR_PURPOSE:
            raise Unauthenticated(
                "This link needs a calendar token; get one from /api/me/calendar."
            )
        return identity_from_claims(claims)

    def decode(self, token: object) -> Identity:
        """An access token of the platform. Calendar tokens open nothing but the feed."""
        claims = self._claims(token)
        if "purpose" in claims:
            raise Unauthenticated("This token is only good for the calendar feed.")
        return identity_from_claims(claims)

    def _claims(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise Unauthenticated("A valid access token is required.")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("The access token's signature is not valid.") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"The access token is not valid ({exc}).") from None
        return claims


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    sub, role, name = claims.get("sub"), claims.get("role"), claims.get("name")
    if not isinstance(sub, str) or not sub or len(sub) > 64:
        raise Unauthenticated("The access token's 'sub' claim must be a user id (1-64 characters).")
    if role not in ROLES:
        raise Unauthenticated(
            "The access token's 'role' claim must be tutor, student, parent or admin."
        )
    if not isinstance(name, str) or not name.strip():
        raise Unauthenticated("The access token's 'name' claim is required.")
    email = claims.get("email")
    if email is not None and not isinstance(email, str):
        raise Unauthenticated("The access token's 'email' claim must be a string.")
    children = claims.get("children") or []
    if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
        raise Unauthenticated("The access token's 'children' claim must be a list of user ids.")
    return Identity(
        user_id=sub,
        role=cast(Role, role),
        name=name.strip()[:200],
        email=email,
        children=tuple(children) if role == "parent" else (),
    )
