"""The fast path's manager keeps shared rooms as plain dicts (``emit.InlineEmit``): rooms behave
as python-socketio's own do (enter, leave, participants of one room or several, a client's
rooms, closing a room, a disconnect leaving every room)."""

from __future__ import annotations

import pytest
import socketio
from bidict import bidict

from classroom.signaling import fast


async def connected(manager: fast.InlineEmit, count: int) -> list[str]:
    sids = []
    for k in range(count):
        sid = await manager.connect(f"eio-{k}", "/classroom")
        assert sid is not None
        sids.append(sid)
    return sids


@pytest.fixture
def manager() -> fast.InlineEmit:
    server = socketio.AsyncServer(async_mode="aiohttp", **fast.server_options(fast=True))
    assert isinstance(server.manager, fast.InlineEmit)
    return server.manager


async def test_rooms_behave_as_python_socketios(manager: fast.InlineEmit) -> None:
    a, b, c = await connected(manager, 3)
    await manager.enter_room(a, "/classroom", "room-1")
    await manager.enter_room(b, "/classroom", "room-1")
    await manager.enter_room(c, "/classroom", "room-2")
    rooms = manager.rooms["/classroom"]
    assert type(rooms["room-1"]) is dict  # a shared room
    assert isinstance(rooms[None], bidict) and isinstance(rooms[a], bidict)  # as upstream
    assert dict(manager.get_participants("/classroom", "room-1")) == {a: "eio-0", b: "eio-1"}
    both = dict(manager.get_participants("/classroom", ["room-1", "room-2", "nobody-here"]))
    assert both == {a: "eio-0", b: "eio-1", c: "eio-2"}
    assert dict(manager.get_participants("/classroom", None)) == {
        a: "eio-0",
        b: "eio-1",
        c: "eio-2",
    }
    assert dict(manager.get_participants("/classroom", a)) == {a: "eio-0"}
    assert sorted(manager.get_rooms(a, "/classroom")) == sorted([a, "room-1"])
    assert manager.sid_from_eio_sid("eio-1", "/classroom") == b

    with pytest.raises(ValueError, match="sid room"):
        await manager.enter_room(a, "/classroom", b)
    with pytest.raises(ValueError, match="not connected"):
        manager.basic_enter_room(a, "/elsewhere", "room-1")

    await manager.leave_room(a, "/classroom", "room-1")
    assert dict(manager.get_participants("/classroom", "room-1")) == {b: "eio-1"}
    await manager.disconnect(b, "/classroom")
    assert "room-1" not in manager.rooms["/classroom"]  # emptied rooms go, as upstream
    await manager.close_room("room-2", "/classroom")
    assert "room-2" not in manager.rooms["/classroom"]
    assert manager.get_rooms(c, "/classroom") == [c]


async def test_participants_are_a_copy(manager: fast.InlineEmit) -> None:
    """A send may close a dead socket, which edits the rooms while an emit walks them."""
    a, b = await connected(manager, 2)
    for sid in (a, b):
        await manager.enter_room(sid, "/classroom", "room-1")
    seen = []
    for sid, _ in manager.get_participants("/classroom", "room-1"):
        seen.append(sid)
        await manager.leave_room(sid, "/classroom", "room-1")
    assert seen == [a, b]
