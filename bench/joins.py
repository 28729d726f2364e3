"""The join's own work, without sockets: every entry of the start of the hour at once, through the
services, in one process.

    bash bench/run.sh joins [--runs 5] [--sessions 500] [--database sqlite|postgresql]
        [--pg-dsn postgresql://…/postgres] [--log-level INFO] [--profile FILE]

A diagnostic for the join storm's p99 (``bench/classroom.py``): the storm is bound by the server's
CPU, and its run-to-run noise (the load client shares the machine's two cores) hides changes of
10-20%; this leaves the transport and the load client out. Per run: a fresh database with
``--sessions`` two-person sessions (``bench.classroom_servers.seed``), the application as
``classroom serve`` builds it (``create_app``, media off, the same GC schedule) started without a
listening socket; then the tutor's and the student's entry of every session at once, each doing
what a ``join`` event does past the transport: ``enter_classroom`` (authorise with the batched
read, start the session in the group commit, the summary view) and the presence join (the
announcement, the attendance record committed). Reported: the event loop thread's CPU per join
over the round, the round's wall time, each entry's own time (p50 / p99), and the SQL statements,
batched reads and group-commit transactions the round took. ``--profile FILE`` writes a cProfile
of the last run's round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import event

from bench.classroom_servers import SECRET, database, seed
from bench.harness import median, table, write_result
from classroom.app import ACTIVITY, DB, ROOMS, create_app
from classroom.auth import Identity, TokenCodec
from classroom.config import Settings
from classroom.logs import configure_logging, stop_logging
from classroom.rooms.model import Member
from classroom.sessions.api import SESSIONS
from classroom.signaling.fast import GcScheduler, gc_ctx

ROUND_TIMEOUT = 120.0  # seconds: a round that takes longer is a failure, not a figure


def _people(sessions: list[dict[str, str]]) -> list[tuple[Identity, str]]:
    """Each session's tutor and student, from the tokens ``bench.classroom_servers.seed`` made."""
    codec = TokenCodec(SECRET)
    return [
        (codec.decode(session[token]), session["id"])
        for session in sessions
        for token in ("tutor_token", "student_token")
    ]


async def one_run(args: argparse.Namespace, tmp: Path, index: int, profile: bool) -> dict[str, Any]:
    async with database(args, tmp, index) as url:
        sessions = await seed(url, args.sessions)
        settings = Settings(
            database_url=url,
            jwt_secret=SECRET,
            media_enabled=False,
            mail_dir=str(tmp / f"mail-{index}"),
        )
        app = create_app(settings)
        app.cleanup_ctx.append(gc_ctx(GcScheduler(app[ACTIVITY])))  # as `classroom serve`
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            return await _round(app, _people(sessions), profile, args.profile)
        finally:
            await runner.cleanup()


async def _round(
    app: web.Application, entries: list[tuple[Identity, str]], profile: bool, out: str | None
) -> dict[str, Any]:
    service, rooms, db = app[SESSIONS], app[ROOMS], app[DB]
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    await db.ping()  # the pool's connection open before the round
    engines = [e.sync_engine for e in (db.engine, db._read_engine) if e is not None]
    for engine in engines:  # the writer's and, on SQLite, the readers' engine
        event.listen(engine, "before_cursor_execute", count)
    reads, transactions = service._entries.reads, db.groups.transactions
    own: list[float] = []

    async def enter(k: int, identity: Identity, session_id: str) -> None:
        started = time.perf_counter()
        view = await service.enter_classroom(identity, session_id)
        if view.get("state") != "in_progress":
            raise RuntimeError(f"entry {k}: the session is {view.get('state')!r}")
        member = Member(identity.user_id, identity.name, identity.role)
        await rooms.join(session_id, member, f"bench:{k}")
        own.append(time.perf_counter() - started)

    profiler = cProfile.Profile() if profile and out else None
    cpu, wall = time.thread_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    async with asyncio.timeout(ROUND_TIMEOUT):
        await asyncio.gather(*(enter(k, who, s) for k, (who, s) in enumerate(entries)))
    if profiler is not None and out is not None:
        profiler.disable()
        profiler.dump_stats(out)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    for engine in engines:
        event.remove(engine, "before_cursor_execute", count)
    own.sort()
    return {
        "joins": len(entries),
        "loop_cpu_us_per_join": cpu / len(entries) * 1e6,
        "wall_ms": wall * 1000,
        "entry_p50_ms": own[len(own) // 2] * 1000,
        "entry_p99_ms": own[int(len(own) * 0.99)] * 1000,
        "statements": statements,
        "batched_reads": service._entries.reads - reads,
        "transactions": db.groups.transactions - transactions,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="classroom-joins-") as tmp:
        # The server's log lines are part of a join's work: made and rendered as `classroom
        # serve` does, written to a file here.
        lines = open(Path(tmp) / "server.log", "w")  # closed below
        with contextlib.redirect_stderr(lines):
            configure_logging(args.log_level)
        try:
            for index in range(args.runs):
                runs.append(await one_run(args, Path(tmp), index, profile=index == args.runs - 1))
        finally:
            stop_logging()
            lines.close()
            configure_logging("WARNING")
    keys = [k for k in runs[0] if k != "joins"]
    medians = {k: median([r[k] for r in runs]) for k in keys}
    rows = [[i + 1, *(r[k] for k in keys)] for i, r in enumerate(runs)]
    rows.append(["median", *(medians[k] for k in keys)])
    print(
        table(
            f"joins through the services: {runs[0]['joins']} entries at once, one process, "
            f"{args.database}",
            ["run", *keys],
            rows,
        )
    )
    spread = [r["loop_cpu_us_per_join"] for r in runs]
    if len(spread) > 1:
        print(f"loop CPU per join: stdev {statistics.stdev(spread):.1f} µs over {len(spread)} runs")
    result = {"options": vars(args), "runs": runs, "medians": medians}
    print(f"wrote {write_result('joins', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres", help="its server"
    )
    parser.add_argument("--log-level", default="INFO", help="the server's (lines to a file)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile of the last run's round")
    args = parser.parse_args()
    if args.runs < 1 or args.sessions < 1:
        parser.error("--runs and --sessions must be at least 1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
