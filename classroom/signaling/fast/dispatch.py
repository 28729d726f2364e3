"""Incoming Socket.IO events from engine.io to the namespace's handler, without the detours.

python-socketio takes a text event through ``_handle_eio_message`` (a ``Packet``),
``_handle_event`` (a task), ``_handle_event_internal``, ``_trigger_event`` (handler lookup),
``AsyncNamespace.trigger_event`` (``hasattr``, ``getattr``, ``inspect.iscoroutinefunction``)
and ``_send_packet`` for the ack. ``Dispatcher.event`` does the same for the usual case in one
step: a text EVENT (``split``), no attachments pending, no decorator handlers (``sio.on``) in
its namespace or for ``*``, a class-based namespace that does not override ``trigger_event``,
a coroutine ``on_<event>`` method, a connected client, no ``socketio`` info logging, and
``async_handlers`` on. The handler runs in a task started eagerly: at once, up to its first real
wait (a relay handler, which never waits, finishes there and writes its ack in the same pass).
Handlers still get their own task: they may ``await sio.call()``, which needs the connection read
meanwhile. Anything else answers ``False`` and goes through python-socketio's own code;
``_handle_event`` is replaced for that path too (the same eager task), and ``_send_packet`` writes
through ``emit.send_encoded``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from typing import Any

import socketio
from socketio import packet as sio_packet
from socketio.async_server import task_reference_holder

from classroom.signaling.fast.emit import send_encoded
from classroom.signaling.fast.packets import FastPacket, split, text_packet

_DEFAULT_TRIGGER = socketio.AsyncNamespace.trigger_event


class Dispatcher:
    """The short path for one server's incoming events (see module doc)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self._coroutine: dict[Any, bool] = {}  # handler function -> is a coroutine function

    def event(self, eio_sid: str, text: str) -> bool:
        """Start the handler of ``text`` (an engine.io MESSAGE's payload); ``False``: not here."""
        sio = self.sio
        parts = split(text)
        if parts is None or parts[0] != sio_packet.EVENT or eio_sid in sio._binary_packet:
            return False
        _, namespace, ack_id, body = parts
        namespace = namespace or "/"
        handlers = sio.handlers
        if namespace in handlers or "*" in handlers or not sio.async_handlers:
            return False
        ns = sio.namespace_handlers.get(namespace)
        if ns is None or type(ns).trigger_event is not _DEFAULT_TRIGGER:
            return False
        if sio.logger.isEnabledFor(logging.INFO) or body >= len(text):
            return False
        try:
            data = sio.packet_class.json.loads(text[body:])
        except ValueError:
            return False  # python-socketio's path raises and logs it
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return False
        event = data[0]
        if event in sio.reserved_events:
            return False
        handler = getattr(ns, "on_" + event, None)
        function = getattr(handler, "__func__", None)
        if function is None:
            return False
        coroutine = self._coroutine.get(function)
        if coroutine is None:
            coroutine = self._coroutine[function] = inspect.iscoroutinefunction(handler) is True
        if not coroutine:
            return False
        manager = sio.manager
        sid = manager.sid_from_eio_sid(eio_sid, namespace)
        if not manager.is_connected(sid, namespace):
            return False  # python-socketio's path warns and drops it
        run = _run(sio, handler, sid, eio_sid, data, namespace, ack_id)
        task = asyncio.Task(run, loop=asyncio.get_running_loop(), eager_start=True)
        if not task.done():
            task_reference_holder.add(task)
            task.add_done_callback(task_reference_holder.discard)
        return True


async def _run(
    sio: Any, handler: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, ack_id: Any
) -> None:
    """``_handle_event_internal`` + ``AsyncNamespace.trigger_event`` for a coroutine handler."""
    try:
        result = await handler(sid, *data[1:])
    except asyncio.CancelledError:
        result = None
    if ack_id is None:
        return
    if result is None:
        args = []
    elif isinstance(result, tuple):
        args = list(result)
    else:
        args = [result]
    packet_class = sio.packet_class
    encoded = (
        text_packet(sio_packet.ACK, namespace, args, ack_id) if packet_class is FastPacket else None
    ) or packet_class(sio_packet.ACK, namespace=namespace, id=ack_id, data=args).encode()
    await send_encoded(sio, eio_sid, encoded)


async def _send_packet(self: Any, eio_sid: str, pkt: Any) -> None:
    """``AsyncServer._send_packet`` (python-socketio 5.18.1) through ``send_encoded``."""
    await send_encoded(self, eio_sid, pkt.encode())


async def _handle_event(self: Any, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
    """``AsyncServer._handle_event`` (python-socketio 5.18.1) with the task started eagerly."""
    namespace = namespace or "/"
    sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
    self.logger.info('received event "%s" from %s [%s]', data[0], sid, namespace)
    if not self.manager.is_connected(sid, namespace):
        self.logger.warning("%s is not connected to namespace %s", sid, namespace)
        return
    handling = self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
    if not self.async_handlers:
        await handling
        return
    task = asyncio.Task(handling, loop=asyncio.get_running_loop(), eager_start=True)
    if not task.done():
        task_reference_holder.add(task)
        task.add_done_callback(task_reference_holder.discard)


def hook_server(sio: socketio.AsyncServer) -> Dispatcher:
    """Route the server's single-client sends and event dispatch through this package."""
    sio._send_packet = types.MethodType(_send_packet, sio)
    sio._handle_event = types.MethodType(_handle_event, sio)
    return Dispatcher(sio)
