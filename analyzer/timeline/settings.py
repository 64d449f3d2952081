"""Timeline settings from ``runbooks/timeline/timeline.toml``, validated with file and field."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from engine.policy.loader import StrictModel, load_model
from runbooks import RUNBOOKS_DIR

SETTINGS_PATH = RUNBOOKS_DIR / "timeline" / "timeline.toml"
ENTITY_KINDS = ("queue", "service", "circuit", "region")


class WindowSettings(StrictModel):
    margin_before_s: int = Field(ge=0)
    margin_after_s: int = Field(ge=0)
    max_log_records: int = Field(ge=100)
    max_traces: int = Field(ge=10)
    evidence_lines: int = Field(ge=5)
    match_tolerance_s: int = Field(ge=0)


class BaselineSettings(StrictModel):
    max_s: int = Field(ge=10)
    reference_share_pct: int = Field(ge=5, le=100)


class AnomalySettings(StrictModel):
    consecutive: int = Field(ge=1)
    spike_factor: float = Field(ge=1.0)
    mad_factor: float = Field(gt=0)
    relative_pct: float = Field(ge=0)
    log_bucket_s: int = Field(ge=1)
    log_sigma: float = Field(gt=0)
    log_min_count: int = Field(ge=1)
    slow_trace_factor: float = Field(gt=1.0)
    floor: dict[str, float]


class ServiceSettings(StrictModel):
    aliases: dict[str, str] = {}
    not_candidates: list[str] = []
    label_owner: dict[str, str] = {}
    display_labels: list[str] = []


class SignalSpec(StrictModel):
    """One runbook signal as a metric series."""

    kind: Literal["queue", "service", "circuit", "region"]
    signal: str
    metric: str
    title: str
    label: str | None = None
    entity_service: bool = False
    region: Literal["standby"] | None = None
    scale: float = 1.0


class TypeSettings(StrictModel):
    chart: str
    snapshot: list[str] = Field(min_length=1)


class ChangeSpec(StrictModel):
    """A kind of log line that records a change or an action."""

    kind: str
    pattern: str
    role: Literal["alert", "action", "state"]
    explains: list[str] = []
    completes_within_s: int = Field(default=0, ge=0)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class TimelineSettings(StrictModel):
    window: WindowSettings
    baseline: BaselineSettings
    anomaly: AnomalySettings
    services: ServiceSettings
    signals: list[SignalSpec]
    types: dict[str, TypeSettings]
    changes: list[ChangeSpec]

    @model_validator(mode="after")
    def _references(self) -> "TimelineSettings":
        known = {(s.kind, s.signal) for s in self.signals}
        kinds = {s.signal for s in self.signals}
        for name, t in self.types.items():
            for ref in [t.chart, *t.snapshot]:
                sig = ref.removeprefix("service.")
                if sig not in kinds:
                    raise ValueError(f"types.{name}: {ref!r} is not a signal defined under [[signals]]")
        if len(known) != len(self.signals):
            raise ValueError("signals: a (kind, signal) pair is defined twice")
        return self

    def signal(self, kind: str, name: str) -> SignalSpec | None:
        """The series spec of a runbook signal of an entity kind."""
        for s in self.signals:
            if s.kind == kind and s.signal == name:
                return s
        return None

    def alias(self, service: str | None) -> str | None:
        """The canonical name of a service as logs spell it."""
        if service is None:
            return None
        return self.services.aliases.get(service, service)


@lru_cache(maxsize=4)
def _load(path: str) -> TimelineSettings:
    return load_model(Path(path), TimelineSettings)


def load_timeline_settings(path: Path | None = None) -> TimelineSettings:
    """Read and validate the timeline settings (cached per path)."""
    return _load(str(path or SETTINGS_PATH))
