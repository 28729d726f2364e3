"""Socket.IO sends without the per-recipient hops.

``InlineEmit`` (``client_manager=``): a room emit encodes the packet once and writes it to each
recipient in turn (``websocket.Direct.send_message``) instead of creating one task per recipient
and waiting on them. Composes with ``socketio.AsyncRedisManager`` (``inline_emit(...)``: the
pub/sub layer calls it for the local delivery). ``send_encoded`` is the same for one client.

Every case the short path does not cover (a closed or unknown socket, a late pong, a socket not
on a plain websocket, engine.io logging on) goes through python-socketio / engine.io's own code.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from classroom.signaling.fast.packets import FastPacket, text_packet

log = logging.getLogger(__name__)


async def send_encoded(server: Any, eio_sid: str, encoded: str | list[Any]) -> None:
    """``AsyncServer._send_packet`` after ``pkt.encode()``: MESSAGE packets to one client."""
    socket = server.eio.sockets.get(eio_sid)
    direct = getattr(socket, "fast_direct", None)
    for part in encoded if isinstance(encoded, list) else (encoded,):
        if direct is None or not direct.send_message(part):
            await server.eio.send(eio_sid, part)


class InlineEmit(socketio.AsyncManager):  # type: ignore[misc]
    """``AsyncManager.emit`` without a task per recipient: packets are written one after another.

    Rooms other than the namespace's own (``None``: every connected sid, whose sid -> engine.io
    sid inverse python-socketio reads and whose duplicates it detects) and each sid's own room
    are plain dicts here, not ``bidict``s: a ``bidict`` checks both directions on every write
    (a join enters two rooms: 1.4 µs against 0.08 µs a write), and nothing reads those rooms'
    inverse. ``get_participants`` reads either kind."""

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """``BaseManager.basic_enter_room`` (python-socketio 5.18.1), a dict for a shared room."""
        if room is None or room == sid:
            super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
            return
        if eio_sid is None and namespace not in self.rooms:
            raise ValueError("sid is not connected to requested namespace")
        if self.is_sid_room(namespace, room):
            raise ValueError("cannot enter a sid room")
        rooms = self.rooms.setdefault(namespace, {})
        members = rooms.get(room)
        if members is None:
            members = rooms[room] = {}
        if eio_sid is None:
            eio_sid = rooms[None][sid]
        members[sid] = eio_sid

    def get_participants(self, namespace: str, room: Any) -> Any:
        """``BaseManager.get_participants`` for rooms that are dicts or ``bidict``s."""
        ns = self.rooms.get(namespace, {})
        names = room if hasattr(room, "__len__") and not isinstance(room, str) else (room,)
        participants: dict[str, str] = {}
        for name in names:
            members = ns.get(name)
            if members:
                participants.update(getattr(members, "_fwdm", members))
        yield from participants.items()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        # Materialise first: a send may close a dead socket, which edits the rooms.
        recipients = [
            (sid, eio_sid)
            for sid, eio_sid in self.get_participants(namespace, room)
            if sid not in skip
        ]
        if not recipients:
            return
        server = self.server
        if not callback:
            packet_class = server.packet_class
            encoded = (
                text_packet(sio_packet.EVENT, namespace, [event, *args])
                if packet_class is FastPacket
                else None
            ) or packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
            parts = encoded if isinstance(encoded, list) else [encoded]
            sockets = server.eio.sockets
            for _sid, eio_sid in recipients:
                direct = getattr(sockets.get(eio_sid), "fast_direct", None)
                try:
                    for part in parts:
                        if direct is None or not direct.send_message(part):
                            await server._send_eio_packet(
                                eio_sid, eio_packet.Packet(eio_packet.MESSAGE, part)
                            )
                except Exception:
                    log.exception("emit %s to %s failed", event, eio_sid)
            return
        for sid, eio_sid in recipients:
            ack_id = self._generate_ack_id(sid, callback)
            pkt = server.packet_class(
                sio_packet.EVENT, namespace=namespace, data=[event, *args], id=ack_id
            )
            try:
                await server._send_packet(eio_sid, pkt)
            except Exception:
                log.exception("emit %s to %s failed", event, eio_sid)


def inline_emit(manager_class: type[Any]) -> type[Any]:
    """``manager_class`` (an ``AsyncManager`` subclass, e.g. ``AsyncRedisManager``), inline."""
    if issubclass(manager_class, InlineEmit):
        return manager_class
    return type(f"Inline{manager_class.__name__}", (manager_class, InlineEmit), {})
