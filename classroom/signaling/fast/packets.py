"""Socket.IO packets without the per-packet costs: orjson, binary detected only when JSON encoding
fails, and a short decode of the common text event / ack (``2/ns,12[...]``)."""

from __future__ import annotations

import json as stdjson
import re
from typing import Any

import orjson
from engineio import json as eio_json
from socketio import packet as sio_packet

_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# A text EVENT or ACK, in a namespace or not, with an id or not, its JSON next (see ``split``).
_USUAL = re.compile(r"([23])(?:(/[^,?]*),)?([0-9]{0,99})(?=\[|\Z)").match


class FastJson:
    """A ``json``-module stand-in for Socket.IO packets: orjson, the standard module as fallback."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            return stdjson.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            # NaN/Infinity, integers past 64 bits, invalid text: engine.io's own rules decide.
            return eio_json.loads(text, **kwargs)


class FastPacket(sio_packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet that detects binary payloads only when JSON encoding fails."""

    json = FastJson
    packet_type: int
    data: Any
    namespace: str | None
    id: int | None

    def __init__(
        self,
        packet_type: int = sio_packet.EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: int | None = None,
        binary: bool | None = None,
        encoded_packet: Any = None,
    ) -> None:
        self._detect = binary is None and encoded_packet is None
        if binary is None and data is None:
            binary = False  # what Packet.data_is_binary(None) answers, without the call
        super().__init__(
            packet_type,
            data,
            namespace,
            id,
            binary=False if self._detect else binary,
            encoded_packet=encoded_packet,
        )

    def encode(self) -> Any:
        if not self._detect or self.packet_type not in (sio_packet.EVENT, sio_packet.ACK):
            return super().encode()
        try:
            body = None if self.data is None else orjson.dumps(self.data, option=_ORJSON_OPTIONS)
        except TypeError:
            self._detect = False
            if self.data_is_binary(self.data):
                self.packet_type = (
                    sio_packet.BINARY_EVENT
                    if self.packet_type == sio_packet.EVENT
                    else sio_packet.BINARY_ACK
                )
            return super().encode()
        encoded = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            encoded += self.namespace + ","
        if self.id is not None:
            encoded += str(self.id)
        if body is not None:
            encoded += body.decode()
        return encoded

    def decode(self, encoded_packet: Any) -> int:
        """``Packet.decode``, through ``split`` for the common text event or ack."""
        parts = split(encoded_packet) if encoded_packet.__class__ is str else None
        if parts is None:
            return int(super().decode(encoded_packet))
        self.packet_type, self.namespace, packet_id, body = parts
        if packet_id is not None:
            self.id = packet_id
        self.data = self.json.loads(encoded_packet[body:]) if body < len(encoded_packet) else None
        return 0


def split(text: str) -> tuple[int, str | None, int | None, int] | None:
    """Type, namespace, id and where the JSON starts, of a text EVENT or ACK in the usual shape.

    The shape: ``2`` or ``3``, then ``/namespace,`` (no ``?``) or nothing, then fewer than 100
    ASCII digits or none, then ``[`` or the end. ``None`` for anything else (attachments, other
    packet types, anything unusual): ``Packet.decode`` reads those. Where this answers, it finds
    exactly what ``Packet.decode`` (python-socketio 5.18.1) finds."""
    match = _USUAL(text)
    if match is None:
        return None
    kind, namespace, digits = match.groups()
    return ord(kind) - 48, namespace, int(digits) if digits else None, match.end()


def text_packet(kind: int, namespace: str, data: Any, ack_id: int | None = None) -> str | None:
    """``FastPacket(kind, data, namespace, ack_id).encode()`` for an EVENT or ACK whose data
    JSON can carry; ``None`` when it cannot (binary: ``FastPacket`` builds that one)."""
    try:
        body = orjson.dumps(data, option=_ORJSON_OPTIONS)
    except TypeError:
        return None
    head = str(kind) if namespace == "/" else f"{kind}{namespace},"
    if ack_id is not None:
        head += str(ack_id)
    return head + body.decode()
