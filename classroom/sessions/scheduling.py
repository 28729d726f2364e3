"""Scheduling: a tutor's rate and availability, creating bookings (one-off or recurring) and
moving them, with the limits of the product enforced in the same transaction as the write."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.auth import Identity
from classroom.db.tables import Review, SessionParticipant, TutorProfile, new_id
from classroom.db.tables import Session as SessionRow
from classroom.errors import (
    DailyLimit,
    Forbidden,
    GracePeriodExpired,
    InvalidPayload,
    InvalidState,
    NotAStudent,
    NotFound,
    OutsideAvailability,
    Overlap,
    StartInPast,
)
from classroom.sessions import calendar, model, store
from classroom.sessions.events import SessionEvent
from classroom.sessions.lifecycle import _move
from classroom.sessions.queries import QueryUseCases

log = logging.getLogger("classroom.sessions")
MAX_AHEAD = timedelta(days=731)  # bookings up to two years ahead


@dataclass(frozen=True, slots=True)
class Recurrence:
    frequency: calendar.Frequency
    count: int | None = None
    until: date | None = None


@dataclass(frozen=True, slots=True)
class NewSession:
    student_ids: Sequence[str]
    starts_at: datetime
    duration_minutes: int
    topic: str | None = None
    notes: str | None = None
    mode: str = "online"
    recurrence: Recurrence | None = None


def _clean(text: str | None, limit: int, field: str) -> str | None:
    text = (text or "").strip() or None
    if text is not None and len(text) > limit:
        raise InvalidPayload(f"{field}: at most {limit} characters.")
    return text


def _whole_minute(starts_at: datetime) -> None:
    if starts_at.tzinfo is None:
        raise InvalidPayload("starts_at: needs a UTC offset.")
    if starts_at.second or starts_at.microsecond:
        raise InvalidPayload("starts_at: sessions start on a whole minute.")


class SchedulingUseCases(QueryUseCases):
    # -- tutor profile -------------------------------------------------------------------------
    async def get_profile(self, identity: Identity) -> dict[str, Any]:
        """The calling tutor's rate, timezone and weekly availability."""
        if identity.role != "tutor":
            raise Forbidden("Only tutors have a tutor profile.")
        return await self.tutor_profile(identity, identity.user_id)

    async def tutor_profile(self, identity: Identity, tutor_id: str) -> dict[str, Any]:
        """A tutor's public profile: rate, timezone, availability and rating."""
        async with self._db.reader() as tx:
            profile = await store.profile(tx, tutor_id)
            known = await store.names(tx, [tutor_id])
            user_role = (await store.roles(tx, [tutor_id])).get(tutor_id)
            if user_role != "tutor" and tutor_id != identity.user_id:
                raise NotFound("No such tutor.")
            average, count = (
                await tx.execute(
                    select(func.avg(Review.rating), func.count(Review.id)).where(
                        Review.tutor_id == tutor_id
                    )
                )
            ).one()
        return {
            "tutor_id": tutor_id,
            "name": known.get(tutor_id, tutor_id),
            "hourly_rate_cents": profile.hourly_rate_cents,
            "effective_rate_cents": profile.rate(self._settings.default_rate_cents),
            "timezone": profile.timezone,
            "availability": [w.to_dict() for w in profile.windows],
            "rating": {
                "average": None if average is None else round(float(average), 2),
                "count": int(count),
            },
        }

    async def update_profile(
        self, identity: Identity, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Set any of ``hourly_rate_cents`` (None: the platform default), ``timezone`` and
        ``availability`` (a list of ``{weekday, start, end}``); fields not given stay as they are.
        """
        if identity.role != "tutor":
            raise Forbidden("Only tutors have a tutor profile.")
        windows: list[calendar.Window] | None = None
        if "availability" in changes:
            given = changes["availability"]
            windows = calendar.validate_windows(
                [calendar.parse_window(w["weekday"], w["start"], w["end"]) for w in given]
            )
        if "timezone" in changes:
            calendar.zone(changes["timezone"])
        async with self._db.transaction() as tx:
            row = await tx.get(TutorProfile, identity.user_id, with_for_update=True)
            if row is None:
                row = TutorProfile(tutor_id=identity.user_id, timezone="UTC", availability=[])
                tx.add(row)
            if "hourly_rate_cents" in changes:
                row.hourly_rate_cents = changes["hourly_rate_cents"]
            if "timezone" in changes:
                row.timezone = changes["timezone"]
            if windows is not None:
                row.availability = [w.to_dict() for w in windows]
        log.info("tutor profile updated tutor=%s fields=%s", identity.user_id, sorted(changes))
        return await self.get_profile(identity)

    # -- booking -------------------------------------------------------------------------------
    async def create_sessions(self, identity: Identity, new: NewSession) -> dict[str, Any]:
        """Book one session, or every occurrence of a recurring series (each its own booking).

        All or nothing: if any occurrence breaks a limit, nothing is booked and the error names
        the occurrence. Answers the session view, or ``{"series_id", "sessions": [...]}``."""
        if identity.role != "tutor":
            raise Forbidden("Only tutors create sessions.")
        now = self._now()
        students = list(new.student_ids)
        if len(set(students)) != len(students):
            raise InvalidPayload("student_ids: each student once.")
        if identity.user_id in students:
            raise NotAStudent("A tutor cannot book themselves.")
        _whole_minute(new.starts_at)
        model.validate_duration(new.duration_minutes)
        topic = _clean(new.topic, model.TOPIC_MAX_CHARS, "topic")
        notes = _clean(new.notes, model.TEXT_MAX_CHARS, "notes")
        if new.mode not in ("online", "in_person"):
            raise InvalidPayload("mode: online or in_person.")
        series_id = new_id() if new.recurrence is not None else None
        ids: list[str] = []
        async with self._db.transaction() as tx:
            wrong = {u: r for u, r in (await store.roles(tx, students)).items() if r != "student"}
            if wrong:
                raise NotAStudent(user_ids=sorted(wrong))
            await store.lock_tutor(tx, identity.user_id)
            profile = await store.profile(tx, identity.user_id)
            tz = calendar.zone(profile.timezone)
            starts = [new.starts_at]
            if new.recurrence is not None:
                r = new.recurrence
                starts = calendar.expand_recurrence(
                    new.starts_at, tz, r.frequency, r.count, r.until
                )
            for index, start in enumerate(starts):
                end = model.ends_at(start, new.duration_minutes)
                where = {"occurrence": index, "starts_at": store.iso(start)} if series_id else {}
                if now > model.logging_deadline(end, None, self._settings.logging_window_hours):
                    raise GracePeriodExpired(
                        "A past session can be recorded only while its logging window is open.",
                        **where,
                    )
                if start > now + MAX_AHEAD:
                    raise InvalidPayload("starts_at: at most two years ahead.")
                await self._check_slot(tx, profile, students, start, end, None, where)
                row = SessionRow(
                    id=new_id(),
                    tutor_id=identity.user_id,
                    series_id=series_id,
                    starts_at=start,
                    duration_minutes=new.duration_minutes,
                    topic=topic,
                    notes=notes,
                    mode=new.mode,
                    state=model.State.REQUESTED.value,
                    needs_review=False,
                    created_at=now,
                    updated_at=now,
                )
                tx.add(row)
                await tx.flush()
                tx.add_all(
                    SessionParticipant(session_id=row.id, student_id=s, acceptance="pending")
                    for s in students
                )
                store.record_transition(
                    tx, row.id, identity.user_id, None, model.State.REQUESTED, now
                )
                await self._emit(
                    tx,
                    SessionEvent(
                        "session.requested", row.id, identity.user_id, now, {"series_id": series_id}
                    ),
                )
                ids.append(row.id)
        log.info(
            "booked session(s)=%s tutor=%s students=%s series=%s",
            ",".join(ids), identity.user_id, ",".join(students), series_id,
        )  # fmt: skip
        if series_id is None:
            return await self.get_session(identity, ids[0])
        return {"series_id": series_id, "sessions": await self.list_by_ids(identity, ids)}

    async def _check_slot(
        self,
        tx: AsyncSession,
        profile: store.Profile,
        students: Sequence[str],
        start: datetime,
        end: datetime,
        exclude: str | None,
        where: dict[str, Any],
    ) -> None:
        """Availability, one session per tutor/student pair per day (the tutor's local day),
        and no overlap with another of the tutor's sessions."""
        tz = calendar.zone(profile.timezone)
        if not calendar.within_availability(start, end, tz, profile.windows):
            raise OutsideAvailability(timezone=profile.timezone, **where)
        day_start, day_end = calendar.local_day_bounds(start, tz)
        taken = await store.pair_conflicts(
            tx, profile.tutor_id, students, day_start, day_end, exclude
        )
        if taken:
            raise DailyLimit(
                student_ids=taken, date=calendar.local_day(start, tz).isoformat(), **where
            )
        other = await store.tutor_overlap(tx, profile.tutor_id, start, end, exclude)
        if other is not None:
            raise Overlap(session_id=other.id, **where)

    async def reschedule(
        self,
        identity: Identity,
        session_id: str,
        starts_at: datetime,
        duration_minutes: int | None = None,
    ) -> dict[str, Any]:
        """Move one booking (the tutor or support). Same limits as booking; every student must
        accept the new time."""
        now = self._now()
        _whole_minute(starts_at)
        if duration_minutes is not None:
            model.validate_duration(duration_minutes)
        async with self._db.transaction() as tx:
            loaded = await self._load(tx, identity, session_id, for_update=True)
            row = loaded.row
            if loaded.relation not in ("tutor", "admin"):
                raise Forbidden("Only the session's tutor can reschedule it.")
            if row.state not in (model.State.REQUESTED, model.State.ACCEPTED):
                raise InvalidState(f"A {row.state} session cannot be rescheduled.", state=row.state)
            duration = duration_minutes or row.duration_minutes
            if starts_at == row.starts_at and duration == row.duration_minutes:
                return await self._detail(tx, loaded, now)  # nothing moves
            if starts_at <= now:
                raise StartInPast()
            if starts_at > now + MAX_AHEAD:
                raise InvalidPayload("starts_at: at most two years ahead.")
            await store.lock_tutor(tx, row.tutor_id)
            profile = await store.profile(tx, row.tutor_id)
            students = [p.student_id for p in loaded.active]
            end = model.ends_at(starts_at, duration)
            await self._check_slot(tx, profile, students, starts_at, end, row.id, {})
            before, before_duration = row.starts_at, row.duration_minutes
            for p in loaded.active:
                p.acceptance, p.responded_at = "pending", None
            await _move(
                tx, row.id, row.state, model.State.REQUESTED, identity.user_id, now,
                f"rescheduled from {store.iso(before)} to {store.iso(starts_at)}",
                starts_at=starts_at, duration_minutes=duration,
            )  # fmt: skip
            await self._emit(
                tx,
                SessionEvent(
                    "session.rescheduled",
                    row.id,
                    identity.user_id,
                    now,
                    {
                        "from_starts_at": store.iso(before),
                        "to_starts_at": store.iso(starts_at),
                        "from_duration": before_duration,
                        "to_duration": duration,
                    },
                ),
            )
        log.info("rescheduled session=%s to=%s", session_id, store.iso(starts_at))
        return await self.get_session(identity, session_id)
