"""``GET /api/calendar.ics?token=...``: a subscribable iCalendar feed of the caller's sessions.

Calendar applications cannot send headers, so the access token comes in the query string (a
Bearer header works too). The feed holds the sessions from 30 days ago on: taught (tutor),
attended (student) or attended by a linked student (parent); cancelled ones are marked so.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from classroom.db.engine import Database
from classroom.db.tables import utcnow
from classroom.http import TOKENS, bearer_token
from classroom.notify.directory import calendar_sequences, sessions_for
from classroom.notify.ical import render_feed

log = logging.getLogger(__name__)

FEED_PATH = "/api/calendar.ics"
FEED_DAYS_BACK = 30


def add_routes(app: web.Application, db: Database) -> None:
    """Register the calendar feed route (reads the schedule through ``db``)."""

    async def calendar_feed(request: web.Request) -> web.Response:
        token = request.query.get("token") or bearer_token(request)
        identity = request.app[TOKENS].decode(token)
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

    app.router.add_get(FEED_PATH, calendar_feed)
