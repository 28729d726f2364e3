import base64
import random
from collections.abc import Callable

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS

from classroom import auth
from classroom.auth import TokenCodec
from classroom.errors import Unauthenticated

codec = TokenCodec("secret-" + "y" * 32)


def test_round_trip_with_parent_children() -> None:
    token = codec.encode("p1", "parent", "Pat", "p@example.test", ["s1", "s2"])
    identity = codec.decode(token)
    assert identity.user_id == "p1"
    assert identity.role == "parent"
    assert identity.children == ("s1", "s2")
    assert identity.email == "p@example.test"


def test_children_only_count_for_parents() -> None:
    token = jwt.encode(
        {"sub": "t", "role": "tutor", "name": "T", "exp": 2**40, "children": ["x"]},
        "secret-" + "y" * 32,
        algorithm="HS256",
    )
    assert codec.decode(token).children == ()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "required"),
        ("", "required"),
        ("not-a-jwt", "not valid"),
        (TokenCodec("other-secret-" + "z" * 32).encode("u", "tutor", "U"), "signature"),
        (codec.encode("u", "tutor", "U", ttl_seconds=-10), "expired"),
    ],
)
def test_refusals_say_why(token: object, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        codec.decode(token)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "tutor", "name": "A"},
        {"sub": "u", "role": "janitor", "name": "A"},
        {"sub": "u", "role": "tutor"},
        {"sub": "u", "role": "parent", "name": "A", "children": "s1"},
        {"sub": "u" * 65, "role": "tutor", "name": "A"},
    ],
)
def test_bad_claims_are_refused(claims: dict[str, object]) -> None:
    token = jwt.encode({**claims, "exp": 2**40}, "secret-" + "y" * 32, algorithm="HS256")
    with pytest.raises(Unauthenticated):
        codec.decode(token)


def test_none_algorithm_is_refused() -> None:
    token = jwt.encode(
        {"sub": "u", "role": "admin", "name": "A", "exp": 2**40}, None, algorithm="none"
    )
    with pytest.raises(Unauthenticated):
        codec.decode(token)


def test_each_secret_is_prepared_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWT's checks of an HMAC secret (not an asymmetric key, not a JWK) run once per secret,
    not on every decode."""
    prepared: list[object] = []
    original = HMACAlgorithm.prepare_key

    def counting(self: HMACAlgorithm, key: str | bytes) -> bytes:
        prepared.append(key)
        return original(self, key)

    monkeypatch.setattr(HMACAlgorithm, "prepare_key", counting)
    fresh = TokenCodec("fresh-secret-" + "q" * 32)
    tokens = [fresh.encode(f"u{i}", "student", f"U{i}") for i in range(3)]
    assert [fresh.decode(t).user_id for t in tokens] == ["u0", "u1", "u2"]
    assert prepared == ["fresh-secret-" + "q" * 32]
    with pytest.raises(Unauthenticated, match="signature"):
        fresh.decode(codec.encode("u", "tutor", "U"))  # another secret's token


PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_a_secret_pyjwt_refuses_is_refused_every_time() -> None:
    token = codec.encode("u", "tutor", "U")
    asymmetric = TokenCodec(PEM)
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="not valid"):
            asymmetric.decode(token)


def test_the_segment_check_replaced_is_the_pinned_pyjwts() -> None:
    assert jwt.__version__ == auth.PINNED_PYJWT, "re-read PyJWS._decode_base64url_segment"
    assert PyJWS._decode_base64url_segment is auth._decode_segment
    assert auth.PYJWT_DECODE_SEGMENT is not auth._decode_segment  # PyJWT's own, to compare with


def _segments() -> list[bytes]:
    rng = random.Random(7)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    junk = b"+/=!. \n\x00\xff"
    found = [b"", b"=", b"==", b"===", b"QQ", b"QQ=", b"QQ==", b"QQ===", b"QR", b"QR==", b"Q"]
    for raw in (b"", b"a", b"ab", b"abc", b'{"alg":"HS256","typ":"JWT"}', bytes(range(40))):
        encoded = base64.urlsafe_b64encode(raw)
        found += [encoded, encoded.rstrip(b"=")]
    for _ in range(3000):
        size = rng.randrange(0, 24)
        pool = alphabet + junk if rng.random() < 0.3 else alphabet
        body = bytes(rng.choice(pool) for _ in range(size))
        found.append(body + b"=" * rng.choice((0, 0, 0, 1, 2, 3)))
    return found


def test_the_segment_check_gives_pyjwts_answer_for_every_segment() -> None:
    """Same decoded bytes, or the same error, as PyJWT's own check."""

    def outcome(check: Callable[[bytes, str], bytes], segment: bytes) -> object:
        try:
            return check(segment, "payload")
        except Exception as exc:  # the type and message of the refusal
            return (type(exc), str(exc))

    segments = _segments()
    refused = 0
    for segment in segments:
        theirs = outcome(auth.PYJWT_DECODE_SEGMENT, segment)
        assert outcome(auth._decode_segment, segment) == theirs, segment
        refused += isinstance(theirs, tuple)
    assert 0 < refused < len(segments)  # both kinds of answer were compared


def test_a_token_with_a_character_outside_the_alphabet_is_refused() -> None:
    codec = TokenCodec("a-secret-of-thirty-two-bytes-at-least!!")
    header, payload, signature = codec.encode("u1", "student", "Sam").split(".")
    with pytest.raises(Unauthenticated, match="Invalid payload padding"):
        codec.decode(".".join((header, payload[:-1] + "+", signature)))
