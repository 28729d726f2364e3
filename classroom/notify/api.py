"""The calendar feed: ``GET /api/me/calendar`` hands out a subscription link,
``GET /api/calendar.ics?token=...`` serves a subscribable iCalendar feed of the caller's sessions.

Calendar applications cannot send headers and poll for months, so the link carries a long-lived
calendar token (``TokenCodec.encode_calendar``) that opens the feed and nothing else; a Bearer
access token works too. The feed holds the sessions from 30 days ago on: taught (tutor), attended
(student) or attended by a linked student (parent); cancelled ones are marked so.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from classroom.db.engine import Database
from classroom.db.tables import utcnow
from classroom.http import TOKENS, bearer_token, identity_of, json_response
from classroom.notify.directory import calendar_sequences, sessions_for
from classroom.notify.ical import render_feed

log = logging.getLogger(__name__)

FEED_PATH = "/api/calendar.ics"
FEED_DAYS_BACK = 30
FEED_TOKEN_DAYS = 365


def add_routes(app: web.Application, db: Database) -> None:
    """Register the calendar feed route (reads the schedule through ``db``)."""

    async def calendar_link(request: web.Request) -> web.Response:
        identity = await identity_of(request)
        ttl = FEED_TOKEN_DAYS * 86400
        token = request.app[TOKENS].encode_calendar(identity, ttl)
        url = request.url.with_path(FEED_PATH).with_query(token=token)
        expires_at = (utcnow() + timedelta(seconds=ttl)).isoformat()
        return json_response({"url": str(url), "token": token, "expires_at": expires_at})

    async def calendar_feed(request: web.Request) -> web.Response:
        query_token = request.query.get("token")
        if query_token:
            identity = request.app[TOKENS].decode_calendar(query_token)
        else:
            identity = request.app[TOKENS].decode(bearer_token(request))
        now = utcnow()
        async with db.reader() as tx:
            sessions = await sessions_for(
                tx,
                identity.user_id,
                identity.role,
                since=now - timedelta(days=FEED_DAYS_BACK),
                children=identity.children,
            )
            sequences = await calendar_sequences(tx, [s.id for s in sessions])
        body = render_feed(
            ((session, sequences.get(session.id, 0)) for session in sessions),
            now=now,
            name=f"Tutoring sessions: {identity.name}",
        )
        log.info("calendar feed for %s: %d sessions", identity.user_id, len(sessions))
        return web.Response(
            body=body.encode(),
            headers={
                "Content-Type": "text/calendar; charset=utf-8",
                "Content-Disposition": 'inline; filename="classroom.ics"',
                "Cache-Control": "private, max-age=300",
            },
        )

    app.router.add_get("/api/me/calendar", calendar_link)
    app.router.add_get(FEED_PATH, calendar_feed)
