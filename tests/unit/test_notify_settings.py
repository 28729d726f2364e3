"""Notification settings and the pieces built from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from classroom.config import ConfigError, load_settings
from classroom.notify.mail import SmtpTransport, build_message
from classroom.notify.webhook import encode_body, sign, verify


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("SMTP_URL", "WEBHOOK_URL", "WEBHOOK_SECRET", "REMINDERS_MINUTES", "MAIL_DIR"):
        monkeypatch.delenv(f"CLASSROOM_{key}", raising=False)
    settings = load_settings(require_secret=False)
    assert settings.smtp_url is None and settings.webhook_url is None
    assert settings.mail_dir == "./outbox-mail"
    assert settings.reminders_minutes == [1440, 60]
    assert settings.outbox_max_attempts == 8


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_REMINDERS_MINUTES", "60, 1440,60,15")
    monkeypatch.setenv("CLASSROOM_SMTP_URL", "smtps://user:p%40ss@mail.example.test")
    monkeypatch.setenv("CLASSROOM_WEBHOOK_URL", "https://platform.example.test/hooks")
    monkeypatch.setenv("CLASSROOM_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("CLASSROOM_OUTBOX_MAX_ATTEMPTS", "3")
    settings = load_settings(require_secret=False)
    assert settings.reminders_minutes == [1440, 60, 15]
    assert settings.outbox_max_attempts == 3
    assert settings.webhook_secret == "s3cret"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CLASSROOM_SMTP_URL", "http://mail", "CLASSROOM_SMTP_URL: must start with smtp://"),
        ("CLASSROOM_WEBHOOK_URL", "ftp://x", "CLASSROOM_WEBHOOK_URL: must start with http"),
        ("CLASSROOM_REMINDERS_MINUTES", "60,-5", "CLASSROOM_REMINDERS_MINUTES: reminder"),
        ("CLASSROOM_OUTBOX_MAX_ATTEMPTS", "0", "CLASSROOM_OUTBOX_MAX_ATTEMPTS: "),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(require_secret=False)
    assert str(info.value).startswith(message)


def test_a_webhook_url_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLASSROOM_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("CLASSROOM_WEBHOOK_URL", "https://platform.example.test/hooks")
    with pytest.raises(ConfigError, match="^CLASSROOM_WEBHOOK_SECRET: required when"):
        load_settings(require_secret=False)


def test_smtp_urls() -> None:
    plain = SmtpTransport("smtp://mail.example.test")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls) == (
        "mail.example.test",
        25,
        False,
        None,
    )
    starttls = SmtpTransport("smtp+starttls://u:p%2Fw@mail.example.test?timeout=5")
    assert (starttls.port, starttls.start_tls, starttls.username, starttls.password) == (
        587,
        True,
        "u",
        "p/w",
    )
    assert starttls.timeout == 5
    tls = SmtpTransport("smtps://mail.example.test:2465")
    assert (tls.port, tls.use_tls, tls.start_tls) == (2465, True, False)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = encode_body({"type": "session.started", "id": "e1", "data": {"b": 1, "a": 2}})
    assert body == b'{"data":{"a":2,"b":1},"id":"e1","type":"session.started"}'
    header = sign("secret", body)
    # the documented recipe, independently
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert verify("secret", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("secret", body, None)


def test_message_has_text_html_and_calendar_parts() -> None:
    payload = {
        "to": "sara@example.test",
        "to_name": "Sara Student",
        "subject": "Hello",
        "text": "plain",
        "html": "<p>html</p>",
        "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "ics_method": "CANCEL",
    }
    message = build_message("m-1", payload, "Classroom <c@example.test>", datetime.now(UTC))
    assert message["Message-ID"] == "<m-1@classroom>"
    assert message["To"] == "Sara Student <sara@example.test>"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "CANCEL"
    assert attachment.get_filename() == "cancel.ics"
    assert attachment.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    html = message.get_body(("html",))
    assert html is not None and "<p>html</p>" in str(html.get_content())
