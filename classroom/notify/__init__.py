"""Notifications: emails with calendar invitations, reminders and signed webhooks, written to an
outbox in the caller's transaction and delivered exactly once by a background worker."""

from classroom.notify.model import InvoiceInfo, Person, SessionInfo
from classroom.notify.notifier import Notifier

__all__ = ["InvoiceInfo", "Notifier", "Person", "SessionInfo"]
