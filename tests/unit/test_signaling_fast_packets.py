"""The fast path's packet decode finds exactly what python-socketio's ``Packet.decode`` finds."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from socketio import packet

from classroom.signaling.fast.packets import FastPacket, split, text_packet

PREFIXES = ["2", "3", "0", "1", "4", "5", "6"]
NAMESPACES = ["", "/relay,", "/a-b,", "/q?x=1,", "/,", "/relay", "/é,"]
IDS = ["", "7", "12", "0012", "1-", "3-", "٣", "1" * 99, "1" * 100, "1" * 101]
BODIES = [
    "",
    '["relay",{"room":"r1","n":-3}]',
    '["a-b"]',
    "[]",
    '{"not":"a list"}',
    '"text"',
    "[1,2",
    "[NaN]",
    '["x",{"_placeholder":true,"num":0}]',
    "-[]",
]


def fields(pkt: Any) -> tuple[Any, ...]:
    return (pkt.packet_type, pkt.namespace, pkt.id, pkt.data, pkt.attachment_count)


def decode_both(text: str) -> tuple[Any, Any]:
    results: list[tuple[str, Any]] = []
    for cls in (packet.Packet, FastPacket):
        try:
            results.append(("ok", fields(cls(encoded_packet=text))))
        except Exception as exc:  # the same failure, whatever it is
            results.append(("error", type(exc)))
    return results[0], results[1]


CORPUS = ["".join(parts) for parts in itertools.product(PREFIXES, NAMESPACES, IDS, BODIES)]


def test_the_corpus_reaches_both_paths() -> None:
    taken = [text for text in CORPUS if split(text) is not None]
    assert len(taken) > 200
    assert len(CORPUS) - len(taken) > 1000


@pytest.mark.parametrize("chunk", range(8))
def test_decode_matches_python_socketio(chunk: int) -> None:
    for text in CORPUS[chunk::8]:
        reference, fast = decode_both(text)
        assert fast == reference, text


def test_decode_matches_on_random_text() -> None:
    rng = random.Random(1234)
    alphabet = '0123456789/,?-[]{}":abé٣ '
    for _ in range(20_000):
        text = rng.choice("23") + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        reference, fast = decode_both(text)
        assert fast == reference, text


def test_split_reads_the_usual_shapes() -> None:
    assert split('2/relay,12["relay",{}]') == (2, "/relay", 12, 10)
    assert split('3/relay,5[{"ok":true}]') == (3, "/relay", 5, 9)
    assert split('2["x"]') == (2, None, None, 1)
    assert split("2/relay,") == (2, "/relay", None, 8)
    # left to python-socketio: attachments, query strings, other packet types, odd ids
    for text in [
        '51-/relay,["x",{"_placeholder":true,"num":0}]',
        '2/r?x=1,["x"]',
        '0/relay,{"a":1}',
    ]:
        assert split(text) is None
    assert split('21-["x"]') is None
    assert split('2/relay,٣["x"]') is None


def test_encode_reads_back_the_same_for_text_and_binary() -> None:
    # orjson leaves non-ASCII text unescaped where the standard module escapes it: the same JSON
    for data, pkt_id in [(["relay", {"a": [1, "é"]}], 4), (["blob", b"\x00"], None), (None, 9)]:
        for kind in (packet.EVENT, packet.ACK):
            fast = FastPacket(kind, data=data, namespace="/relay", id=pkt_id).encode()
            reference = packet.Packet(kind, data=data, namespace="/relay", id=pkt_id).encode()
            assert type(fast) is type(reference)
            if isinstance(fast, list):
                assert fast[1:] == reference[1:]
                fast, reference = fast[0], reference[0]
            assert fields(packet.Packet(encoded_packet=fast)) == fields(
                packet.Packet(encoded_packet=reference)
            )


@pytest.mark.parametrize("namespace", ["/", "/relay"])
@pytest.mark.parametrize("ack_id", [None, 0, 12])
@pytest.mark.parametrize("kind", [packet.EVENT, packet.ACK])
def test_text_packet_is_what_fast_packet_encodes(
    namespace: str, ack_id: int | None, kind: int
) -> None:
    for data in (["relay", {"room": "r", "n": [1, 2.5, None, True]}], [{"ok": True}], []):
        expected = FastPacket(kind, data=data, namespace=namespace, id=ack_id).encode()
        assert text_packet(kind, namespace, data, ack_id) == expected
    # binary payloads are FastPacket's to build
    assert text_packet(kind, namespace, ["blob", b"\x00"], ack_id) is None
