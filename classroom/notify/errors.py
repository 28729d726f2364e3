"""Delivery failures the worker treats differently from the rest."""

from __future__ import annotations


class PermanentDeliveryError(Exception):
    """Trying again cannot help (address refused, webhooks no longer configured): give up now."""
