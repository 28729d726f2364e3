"""Socket.IO transport for the classroom. Handlers parse, call one service method, and reply."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from classroom.auth import Identity, TokenCodec
from classroom.errors import ClassroomError
from classroom.metrics import Metrics
from classroom.users.directory import UserDirectory

log = logging.getLogger(__name__)

NAMESPACE = "/classroom"


class ClassroomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, tokens: TokenCodec, users: UserDirectory, metrics: Metrics) -> None:
        super().__init__(NAMESPACE)
        self._tokens = tokens
        self._users = users
        self._metrics = metrics
        self.identities: dict[str, Identity] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._tokens.decode(token)
        except ClassroomError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_dict()) from None
        await self._users.remember(identity)
        self.identities[sid] = identity
        self._metrics.connected_clients.inc()
        log.debug("connected sid=%s user=%s", sid, identity.user_id)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.identities.pop(sid, None) is not None:
            self._metrics.connected_clients.dec()
