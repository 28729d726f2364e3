"""The no-show settings: defaults, and an end that comes before the prompt is refused loudly."""

from __future__ import annotations

import pytest

from classroom.config import ConfigError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    for name in ("PROMPT_MINUTES", "END_MINUTES", "FEE_PERCENT"):
        monkeypatch.delenv(f"CLASSROOM_NO_SHOW_{name}", raising=False)
    settings = load_settings()
    assert (settings.no_show_prompt_minutes, settings.no_show_end_minutes) == (5, 10)
    assert settings.no_show_fee_percent == 0


def test_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.setenv("CLASSROOM_NO_SHOW_PROMPT_MINUTES", "3")
    monkeypatch.setenv("CLASSROOM_NO_SHOW_END_MINUTES", "3")
    monkeypatch.setenv("CLASSROOM_NO_SHOW_FEE_PERCENT", "12.5")
    settings = load_settings()
    assert (settings.no_show_prompt_minutes, settings.no_show_end_minutes) == (3, 3)
    assert settings.no_show_fee_percent == 12.5


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("END_MINUTES", "4", "CLASSROOM_NO_SHOW_END_MINUTES"),
        ("FEE_PERCENT", "101", "CLASSROOM_NO_SHOW_FEE_PERCENT"),
        ("PROMPT_MINUTES", "-1", "CLASSROOM_NO_SHOW_PROMPT_MINUTES"),
    ],
)
def test_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str, variable: str) -> None:
    monkeypatch.setenv("CLASSROOM_JWT_SECRET", "s")
    monkeypatch.delenv("CLASSROOM_NO_SHOW_PROMPT_MINUTES", raising=False)
    monkeypatch.setenv(f"CLASSROOM_NO_SHOW_{name}", value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_settings()
