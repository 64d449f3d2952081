"""The ``[delivery]`` section of the data directory's config.toml: channels, matching and retries.

Only this section is read here; other sections of config.toml belong to other parts (signal
sources, actuators) and are ignored. Errors name the file and the field
(``config.toml: field delivery.channels.0.url: ...``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.policy.loader import StrictModel, read_data_file, validate

NotificationKind = Literal["page", "info", "update"]


class RetryPolicy(StrictModel):
    """How a failed attempt is retried: exponential backoff, capped, with optional jitter."""

    attempts: int = Field(default=4, ge=1, le=20)  # attempts in all, the first included
    backoff_initial_ms: int = Field(default=1_000, ge=0)
    backoff_multiplier: int = Field(default=2, ge=1, le=10)
    backoff_max_ms: int = Field(default=30_000, ge=0)
    jitter_pct: int = Field(default=10, ge=0, le=100)

    def delay_ms(self, attempt: int) -> int:
        """The pause after failed attempt number ``attempt`` (1-based), before jitter."""
        return min(self.backoff_initial_ms * self.backoff_multiplier ** (attempt - 1), self.backoff_max_ms)


class _Match(StrictModel):
    """Which notifications a channel takes. An empty list means any."""

    name: str = Field(min_length=1, max_length=60)
    channels: list[str] = Field(default_factory=list)  # outbox channels: pager, sms, email, chat, #incidents, status ...
    kinds: list[NotificationKind] = Field(default_factory=list)
    severities: list[Literal["Sev1", "Sev2", "Sev3", "Sev4"]] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    retry: RetryPolicy | None = None  # default: [delivery.retry]
    escalate_on_failure: bool = True


class WebhookChannel(_Match):
    """HTTP POST of the notification as JSON (``format = "json"``) or a Slack-style message."""

    type: Literal["webhook"]
    url: str
    format: Literal["json", "slack"] = "json"
    timeout_ms: int = Field(default=5_000, gt=0, le=120_000)
    headers: dict[str, str] = Field(default_factory=dict)
    proxy: str | None = None  # environment proxies are not used unless named here

    @field_validator("url", "proxy")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
        return v


class CommandChannel(_Match):
    """A program run with the notification as JSON on stdin; exit status 0 means delivered."""

    type: Literal["command"]
    command: list[str] = Field(min_length=1)
    timeout_ms: int = Field(default=10_000, gt=0, le=600_000)
    env: dict[str, str] = Field(default_factory=dict)


class ConsoleChannel(_Match):
    """The console: notifications shown to whoever watches ``ggen console``."""

    type: Literal["console"]
    name: str = "console"


Channel = Annotated[Union[WebhookChannel, CommandChannel, ConsoleChannel], Field(discriminator="type")]


class DeliveryConfig(StrictModel):
    """The whole ``[delivery]`` section."""

    enabled: bool = True
    retry: RetryPolicy = RetryPolicy()
    channels: list[Channel] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, v: list) -> list:
        seen: set[str] = set()
        for ch in v:
            if ch.name in seen:
                raise ValueError(f"channel name {ch.name!r} is used twice")
            seen.add(ch.name)
        return v


class _ConfigFile(BaseModel):
    """config.toml as this module sees it: its own section, everything else left alone."""

    model_config = ConfigDict(extra="ignore")
    delivery: DeliveryConfig = DeliveryConfig()


def load_delivery_config(path: Path) -> DeliveryConfig:
    """The ``[delivery]`` section of ``path``; an absent file or section means no channels."""
    path = Path(path)
    if not path.exists():
        return DeliveryConfig()
    return validate(path, read_data_file(path), _ConfigFile).delivery


def example_config_path() -> Path:
    """The commented example section shipped under runbooks/."""
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "delivery.example.toml"
