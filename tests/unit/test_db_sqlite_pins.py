"""classroom.db.sqlite replaces one private method of aiosqlite (Connection._execute) and relies on
how the connection opens and closes on its worker thread. If an upgrade changes any of it, this
fails loudly: re-read the new code, adapt InlineConnection, then update the pin and digests."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import pytest
from aiosqlite import core, cursor

PINNED_AIOSQLITE = "0.22.1"

RELIED_ON: dict[str, tuple[Callable[..., Any], str]] = {
    # what InlineConnection replaces or relies on -> sha256 prefix of its source
    "Connection._execute (replaced: runs the call inline)": (
        core.Connection._execute,
        "11f83d6bbbe803e3",
    ),
    "Connection._connect (the worker thread opens the connection)": (
        core.Connection._connect,
        "ab38f0f6d707e197",
    ),
    "Connection.__await__ (starts the worker thread)": (
        core.Connection.__await__,
        "d7354f60fe6d37b5",
    ),
    "Connection.close (closes through _execute, then stops the thread)": (
        core.Connection.close,
        "8ba49d8e608d032e",
    ),
    "Connection.stop (the thread closes what is left and exits)": (
        core.Connection.stop,
        "837804b0d406fc1e",
    ),
    "Cursor._execute (every cursor call goes through Connection._execute)": (
        cursor.Cursor._execute,
        "c2b07decd1068928",
    ),
}


def test_the_pinned_aiosqlite_version_is_installed() -> None:
    assert version("aiosqlite") == PINNED_AIOSQLITE


@pytest.mark.parametrize("name", sorted(RELIED_ON))
def test_the_code_relied_on_is_unchanged(name: str) -> None:
    function, digest = RELIED_ON[name]
    source = inspect.getsource(function)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, name
