"""Settings, read once from the environment (``CLASSROOM_*``) and passed down as a frozen object."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSROOM_", frozen=True, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./classroom.db"
    redis_url: str | None = None
    # several processes (with CLASSROOM_REDIS_URL): one prefix per deployment on a shared Redis
    redis_prefix: str = Field(default="classroom:", min_length=1, max_length=64)
    redis_pool_size: int = Field(default=20, ge=2, le=1000)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    heartbeat_ttl: float = Field(default=3.0, gt=0)
    jwt_secret: str | None = None
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    # sessions and money
    default_rate_cents: int = Field(default=0, ge=0)
    platform_fee_percent: float = Field(default=0, ge=0, le=100)
    logging_window_hours: int = Field(default=72, ge=1)
    sweep_interval_seconds: float = Field(default=60, gt=0)
    # no-shows: minutes after the start for *Send "Are you joining?"* and *End as no-show*
    no_show_prompt_minutes: int = Field(default=5, ge=0, le=1440)
    no_show_end_minutes: int = Field(default=10, ge=0, le=1440)
    no_show_fee_percent: float = Field(default=0, ge=0, le=100)
    # classroom
    classroom_open_before_minutes: int = Field(default=15, ge=0)
    classroom_hard_cap_minutes: int = Field(default=30, ge=0)
    reconnect_grace: float = Field(default=10.0, gt=0)
    ping_interval: float = Field(default=1.0, gt=0)
    ping_timeout: float = Field(default=1.5, gt=0)
    # signaling: the fast path (classroom/signaling/fast/), websocket compression, event loop
    signaling_fast: bool = True
    websocket_deflate: bool = False
    gc_tuning: bool = True
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # media
    ice_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(default=3600, gt=0)
    media_enabled: bool = True
    media_loopback: bool = False
    # notifications (classroom/notify): email, calendar, webhooks through the outbox
    smtp_url: str | None = None
    mail_from: str = "Classroom <classroom@localhost>"
    mail_dir: str = "./outbox-mail"
    # emails built and rendered in helper processes (0: on the event loop)
    mail_render_processes: int = Field(default=1, ge=0, le=8)
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, validate_default=True)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_poll_seconds: float = Field(default=5.0, gt=0)
    outbox_retry_base_seconds: float = Field(default=10.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=3600.0, gt=0)
    outbox_lease_seconds: float = Field(default=120.0, gt=0)
    reminders_minutes: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1440, 60])

    @field_validator("allowed_origins", "ice_servers", "reminders_minutes", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("reminders_minutes")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        if any(minutes <= 0 for minutes in value):
            raise ValueError("reminder offsets must be positive minutes, e.g. 1440,60")
        return sorted(set(value), reverse=True)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("smtp://", "smtps://", "smtp+starttls://")):
            raise ValueError("must start with smtp://, smtp+starttls:// or smtps://")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("webhook_url") and not value:
            raise ValueError("required when CLASSROOM_WEBHOOK_URL is set")
        return value or None

    @field_validator("no_show_end_minutes")
    @classmethod
    def _no_show_end(cls, value: int, info: ValidationInfo) -> int:
        prompt = info.data.get("no_show_prompt_minutes")
        if isinstance(prompt, int) and value < prompt:
            raise ValueError("must not be less than CLASSROOM_NO_SHOW_PROMPT_MINUTES")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of "
                + ", ".join(SUPPORTED_DRIVERS)
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("heartbeat_ttl")
    @classmethod
    def _heartbeat_ttl(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("heartbeat_interval")
        if isinstance(interval, float | int) and value <= interval:
            raise ValueError("must be longer than CLASSROOM_HEARTBEAT_INTERVAL")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """This process's public base URL (``CLASSROOM_PUBLIC_URL``, else where it listens)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def load_settings(require_secret: bool = True, **overrides: object) -> Settings:
    """Read the environment once, apply flag overrides, and fail with one line on a bad value."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"CLASSROOM_{field.upper()}: {message}") from None
    if require_secret and not settings.jwt_secret:
        raise ConfigError("CLASSROOM_JWT_SECRET: required (or run `classroom serve --demo`)")
    return settings
