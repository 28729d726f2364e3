"""Wiring the notifications into the application: the notifier port and the outbox worker.

``create_app`` calls ``install_notifications(app, settings, db)`` once; the sessions service
takes the returned ``Notifier`` (also at ``app[NOTIFIER]``). The worker starts with the app and
stops at shutdown, before the database closes, whatever the order of the cleanup contexts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web

from classroom.config import Settings
from classroom.db.engine import Database
from classroom.db.tables import utcnow
from classroom.notify.delivery import Channels
from classroom.notify.mail import FolderTransport, MailTransport, SmtpTransport
from classroom.notify.notifier import Notifier
from classroom.notify.rendering import MailRenderer
from classroom.notify.webhook import WebhookSender
from classroom.notify.worker import OutboxWorker, WorkerOptions

log = logging.getLogger(__name__)

NOTIFIER = web.AppKey("notifier", Notifier)
OUTBOX_WORKER = web.AppKey("outbox_worker", OutboxWorker)


def build_channels(settings: Settings) -> Channels:
    mail: MailTransport
    if settings.smtp_url:
        mail = SmtpTransport(settings.smtp_url)
    else:
        mail = FolderTransport(settings.mail_dir)
    webhooks = None
    if settings.webhook_url and settings.webhook_secret:
        webhooks = WebhookSender(settings.webhook_url, settings.webhook_secret)
    renderer = MailRenderer(settings.mail_render_processes)
    return Channels(mail, settings.mail_from, webhooks, renderer)


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        max_attempts=settings.outbox_max_attempts,
        lease_seconds=settings.outbox_lease_seconds,
        retry_base_seconds=settings.outbox_retry_base_seconds,
        retry_max_seconds=settings.outbox_retry_max_seconds,
        poll_seconds=settings.outbox_poll_seconds,
    )


def build_worker(
    db: Database,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    name: str | None = None,
) -> OutboxWorker:
    return OutboxWorker(
        db, build_channels(settings), worker_options(settings), clock=clock, name=name
    )


def install_notifications(app: web.Application, settings: Settings, db: Database) -> Notifier:
    """Create the notifier (``app[NOTIFIER]``) and run the outbox worker (``app[OUTBOX_WORKER]``)
    with the app."""
    notifier = Notifier(settings)
    worker = build_worker(db, settings)
    notifier.subscribe(worker.wake)
    app[NOTIFIER] = notifier
    app[OUTBOX_WORKER] = worker

    async def outbox_worker(app: web.Application) -> AsyncIterator[None]:
        worker.start()
        log.info(
            "notifications: mail %s, webhooks %s",
            "via SMTP" if settings.smtp_url else f"to folder {settings.mail_dir}",
            "on" if settings.webhook_url else "off",
        )
        yield
        await worker.close()

    async def stop_outbox_worker(app: web.Application) -> None:
        await worker.close()

    app.cleanup_ctx.append(outbox_worker)
    app.on_shutdown.append(stop_outbox_worker)
    return notifier
