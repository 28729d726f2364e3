"""The server's skeleton against a real server: health, readiness, metrics, authentication."""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from classroom.db.engine import Database
from classroom.db.tables import ParentLink, User
from tests.conftest import People


async def test_healthz_and_readyz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"]["database"] == "ok"


async def test_readyz_reports_an_unreachable_database(make_client: Any, tmp_path: Any) -> None:
    client = await make_client(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["error"]["code"] == "unavailable"
    assert body["checks"]["database"] == "unreachable"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-token"},
    ],
)
async def test_api_without_a_valid_token_is_401_json(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    response = await client.get("/api/sessions", headers=headers)
    assert response.status == 401
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == "unauthenticated"
    assert body["error"]["message"]


async def test_expired_token_is_401(client: TestClient[Any, Any], people: People) -> None:
    token = people.token(people.student, ttl=-5)
    response = await client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert "expired" in (await response.json())["error"]["message"]


async def test_unknown_route_is_json_404(client: TestClient[Any, Any]) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_authenticated_request_upserts_the_user_and_parent_links(
    client: TestClient[Any, Any], people: People, db: Database
) -> None:
    await client.get("/api/sessions", headers=people.headers(people.parent))
    renamed = people.parent.__class__(
        people.parent.user_id, "parent", "Paula P.", "pp@example.test", ("student-2",)
    )
    await client.get("/api/sessions", headers=people.headers(renamed))
    async with db.reader() as tx:
        user = await tx.get(User, "parent-1")
        links = (await tx.execute(select(ParentLink.student_id))).scalars().all()
    assert user is not None
    assert (user.name, user.email, user.role) == ("Paula P.", "pp@example.test", "parent")
    assert links == ["student-2"]


async def test_metrics_are_prometheus_text(client: TestClient[Any, Any]) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    for name in (
        "classroom_connected_clients",
        "classroom_live_classrooms",
        "classroom_joins_total",
        "classroom_join_refusals_total",
        "classroom_presence_changes_total",
        "classroom_completions_total",
        "classroom_gate_refusals_total",
        "classroom_forwarded_media_streams",
        "classroom_socketio_event_seconds",
        "classroom_http_request_seconds_bucket",
    ):
        assert name in text, name
    assert 'route="/healthz"' in text


async def test_socketio_connect_needs_a_valid_token(
    client: TestClient[Any, Any], people: People
) -> None:
    url = str(client.make_url("/"))
    for auth in (None, {}, {"token": "garbage"}, {"token": people.token(people.tutor, ttl=-1)}):
        sio = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                url, namespaces=["/classroom"], auth=auth, transports=["websocket"], wait_timeout=5
            )
        await sio.disconnect()

    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        namespaces=["/classroom"],
        auth={"token": people.token(people.tutor)},
        transports=["websocket"],
        wait_timeout=5,
    )
    assert sio.connected
    await sio.disconnect()


async def test_web_client_is_served(client: TestClient[Any, Any]) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert "<html" in (await response.text()).lower()
