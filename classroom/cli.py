"""``classroom serve | migrate | token``."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from typing import Any

import click
from aiohttp import web

from classroom.auth import ROLES, TokenCodec
from classroom.config import ConfigError, Settings, load_settings
from classroom.logs import configure_logging

log = logging.getLogger("classroom")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
LISTEN_BACKLOG = 4096  # pending connections; see serve


def _settings(require_secret: bool = True, **overrides: Any) -> Settings:
    try:
        return load_settings(require_secret=require_secret, **overrides)
    except ConfigError as exc:
        click.echo(f"classroom: configuration error: {exc}", err=True)
        sys.exit(2)


def _fail(message: str) -> None:
    click.echo(f"classroom: {message}", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """A real-time online classroom server for tutoring platforms."""


@main.command()
@click.option(
    "--host", default=None, help="Interface to bind (default CLASSROOM_HOST or 127.0.0.1)."
)
@click.option(
    "--port", type=int, default=None, help="Port to bind (default CLASSROOM_PORT or 8080)."
)
@click.option("--demo", is_flag=True, help="Seed demo users and a session; print log-in links.")
def serve(host: str | None, port: int | None, demo: bool) -> None:
    """Run the classroom server."""
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = _settings(require_secret=not demo, **overrides)
    if demo and not settings.jwt_secret:
        secret = secrets.token_urlsafe(32)
        settings = settings.model_copy(update={"jwt_secret": secret})
        click.echo(f"demo: generated CLASSROOM_JWT_SECRET={secret}")
    if demo and settings.host in LOOPBACK_HOSTS and "CLASSROOM_MEDIA_LOOPBACK" not in os.environ:
        # Browsers on this machine reach the server's media over 127.0.0.1.
        settings = settings.model_copy(update={"media_loopback": True})
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_prepare_database(settings))
    except Exception as exc:
        _fail(f"database {settings.database_url!r} is not usable: {_one_line(exc)}")

    from classroom.app import create_app

    app = create_app(settings)
    if demo:
        app.on_startup.append(_demo_startup(settings))
    app.on_startup.append(_start_mail_helpers)
    web.run_app(
        app,
        loop=_tune_process(app, settings),
        host=settings.host,
        port=settings.port,
        print=lambda line: None,
        access_log=None,
        handle_signals=True,
        shutdown_timeout=5,
        # The start of the hour: a thousand browsers connect at once. aiohttp's default listen
        # backlog (128) overflows and the kernel drops their SYNs, which clients resend after
        # 1, 3, 7, 15 s; the kernel caps this at net.core.somaxconn.
        backlog=LISTEN_BACKLOG,
    )


async def _start_mail_helpers(app: web.Application) -> None:
    """The email helper processes start before the server listens, not under the first emails'
    load."""
    from classroom.notify.wiring import OUTBOX_WORKER

    await app[OUTBOX_WORKER].channels.renderer.ready()


def _tune_process(app: web.Application, settings: Settings) -> asyncio.AbstractEventLoop | None:
    """Process-wide knobs of the signaling fast path: the GC schedule and the event loop."""
    from classroom.app import ACTIVITY
    from classroom.signaling.fast import GcScheduler, gc_ctx

    if settings.gc_tuning:
        app.cleanup_ctx.append(gc_ctx(GcScheduler(app[ACTIVITY])))
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


async def _prepare_database(settings: Settings) -> None:
    """SQLite databases are brought up to date by ``serve``; PostgreSQL must be reachable."""
    from classroom.db.engine import Database
    from classroom.db.migrate import upgrade

    if settings.is_sqlite:
        await upgrade(settings.database_url)
        return
    db = Database(settings.database_url)
    try:
        await db.ping()
    finally:
        await db.close()


def _demo_startup(settings: Settings) -> Any:
    async def startup(app: web.Application) -> None:
        from classroom.app import DB
        from classroom.demo import seed_demo

        assert settings.jwt_secret
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        links = await seed_demo(app[DB], TokenCodec(settings.jwt_secret), base.rstrip("/"))
        click.echo("")
        click.echo(f"Demo session {links.session_id} is ready. Open these in two tabs:")
        click.echo(f"  tutor:   {links.tutor_url}")
        click.echo(f"  student: {links.student_url}")
        click.echo(f"  parent:  {links.parent_url}")
        click.echo("")

    return startup


@main.command()
def migrate() -> None:
    """Apply pending database migrations to CLASSROOM_DATABASE_URL."""
    settings = _settings(require_secret=False)
    from classroom.db.migrate import upgrade

    try:
        asyncio.run(upgrade(settings.database_url))
    except Exception as exc:
        _fail(f"migration failed on {settings.database_url!r}: {_one_line(exc)}")
    click.echo("database is up to date")


@main.command()
@click.option("--sub", required=True, help="User id.")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--child", "children", multiple=True, help="A parent's student id (repeatable).")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
def token(
    sub: str, role: str, name: str, email: str | None, children: tuple[str, ...], ttl: int
) -> None:
    """Print a signed access token (uses CLASSROOM_JWT_SECRET)."""
    settings = _settings()
    assert settings.jwt_secret
    codec = TokenCodec(settings.jwt_secret)
    click.echo(codec.encode(sub, role, name, email, children, ttl_seconds=ttl))  # type: ignore[arg-type]
