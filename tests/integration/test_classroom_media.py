"""Media through the whole classroom: real server, real Socket.IO clients, real aiortc peers.

Presence decides: a participant's media opens when they join, closes when they leave, and the
classroom's media is torn down when the session completes.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from classroom.app import MEDIA
from classroom.auth import Identity
from classroom.db.engine import Database
from tests.conftest import People
from tests.integration.test_media_gateway import sees_everyone
from tests.integration.test_media_support import MediaClient, until
from tests.support import RECAP, Client, seed_session


class Participant(Client):
    """A Socket.IO client in the classroom that also publishes and receives media."""

    def __init__(self, who: Identity) -> None:
        super().__init__(who.user_id)
        self.media = MediaClient(who.user_id)
        self.sio.on("media_offer", self._on_offer, namespace="/classroom")
        self.media.answer_with(self._answer)

    async def _on_offer(self, payload: dict[str, Any]) -> None:
        await self.media.send("media_offer", payload)

    async def _answer(self, sdp: str) -> None:
        ack = await self.call("media_answer", {"sdp": sdp, "type": "answer"})
        assert ack["ok"], ack

    async def _offer(self, sdp: str) -> dict[str, Any]:
        ack = await self.call("media_offer", {"sdp": sdp, "type": "offer"})
        assert ack["ok"], ack
        return {"sdp": ack["answer"]["sdp"], "type": "answer", "tracks": ack["tracks"]}

    async def enter(self, session_id: str) -> dict[str, Any]:
        ack: dict[str, Any] = await self.call("join", {"session_id": session_id})
        assert ack["ok"], ack
        await self.media.publish(self._offer)
        return ack

    async def close(self) -> None:
        await self.media.close()
        await super().close()


async def test_media_follows_the_classroom(db: Database, people: People, make_client: Any) -> None:
    server: TestClient[Any, Any] = await make_client(media_loopback=True, reconnect_grace=1.0)
    gateway = server.app[MEDIA]
    url = str(server.make_url("/"))
    session_id = await seed_session(db, people.tutor, [people.student, people.student2])
    cast = [Participant(w) for w in (people.tutor, people.student, people.student2)]
    try:
        for person, who in zip(cast, (people.tutor, people.student, people.student2), strict=True):
            await person.connect(url, people.token(who))
            ack = await person.enter(session_id)
            assert isinstance(ack["ice_servers"], list)
        clients = [p.media for p in cast]
        await until(lambda: sees_everyone(clients, video=15, audio=15), 30, "everyone's media")
        await until(
            lambda: set(gateway.stats(session_id)) == {"tutor-1", "student-1", "student-2"}, 10
        )
        tutor = cast[0]
        for user_id in ("tutor-1", "student-1", "student-2"):
            await tutor.wait_for(
                "media_status",
                lambda e, u=user_id: e["user_id"] == u and e["status"] == "connected",
            )
        # Presence carries each participant's media state from now on.
        watch = await tutor.call("watch", {"session_id": session_id})
        assert {p["user_id"]: p.get("media") for p in watch["participants"]} == {
            "tutor-1": "connected",
            "student-1": "connected",
            "student-2": "connected",
        }

        # The tutor sees the forwarding figures in the session details; students do not.
        details = await server.get(
            f"/api/sessions/{session_id}", headers=people.headers(people.tutor)
        )
        stats = (await details.json())["media_stats"]
        assert set(stats) == {"tutor-1", "student-1", "student-2"}
        assert all(s["packets_forwarded"] > 0 for s in stats.values())
        mine = await server.get(
            f"/api/sessions/{session_id}", headers=people.headers(people.student)
        )
        assert "media_stats" not in await mine.json()
        metrics = await (await server.get("/metrics")).text()
        assert "classroom_live_classrooms 1.0" in metrics
        assert "classroom_forwarded_media_streams 0.0" not in metrics

        # A student hangs up: their media is closed, the others renegotiate and keep talking.
        leaving = cast.pop()
        assert (await leaving.call("leave_call", {}))["ok"]
        await until(lambda: "student-2" not in gateway.stats(session_id), 10, "media closed")
        await until(
            lambda: all("student-2" not in p.media.mapping.values() for p in cast),
            10,
            "student-2's tracks withdrawn",
        )
        before = tutor.media.received("student-1", "video")
        await until(lambda: tutor.media.received("student-1", "video") > before + 10, 10)
        await leaving.close()

        # The other student leaves, the tutor logs time: the classroom's media is gone.
        assert (await cast[1].call("leave_call", {}))["ok"]
        done = await tutor.call("log_time_and_leave", {"minutes": 30, "recap": RECAP})
        assert done["ok"], done
        await until(lambda: gateway.stats(session_id) == {}, 10, "classroom media torn down")
        assert gateway.connection_count() == 0
    finally:
        for person in cast:
            await person.close()
