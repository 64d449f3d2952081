"""PIR settings from ``runbooks/pir/pir.toml``, validated with file and field."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from engine.policy.loader import StrictModel, load_model
from runbooks import RUNBOOKS_DIR

SETTINGS_PATH = RUNBOOKS_DIR / "pir" / "pir.toml"
PRIORITIES = ("High", "Medium", "Low")


class DraftSettings(StrictModel):
    similar_incidents: int = Field(ge=0, le=20)
    knowledge_actions: int = Field(ge=0, le=10)
    default_owner: str = Field(min_length=1)


class Prevention(StrictModel):
    """A prevention strategy offered as an action item."""

    incident_type: str
    priority: Literal["High", "Medium", "Low"]
    strategy: str
    action: str
    current: str
    owner: str
    effort: Literal["S", "M", "L"]
    expected: str


def _regexes(v: list[str]) -> list[str]:
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from None
    return v


class LintSettings(StrictModel):
    blame: list[str]
    vague: list[str]
    measurable: str
    unquantified: list[str]
    placeholder: list[str]

    @field_validator("blame", "vague", "unquantified", "placeholder")
    @classmethod
    def _compile_all(cls, v: list[str]) -> list[str]:
        return _regexes(v)

    @field_validator("measurable")
    @classmethod
    def _compile_one(cls, v: str) -> str:
        _regexes([v])
        return v


class PirSettings(StrictModel):
    draft: DraftSettings
    horizons: dict[Literal["High", "Medium", "Low"], int]
    hints: dict[str, str]
    prevention: list[Prevention]
    lint: LintSettings

    @field_validator("horizons")
    @classmethod
    def _all_horizons(cls, v: dict[str, int]) -> dict[str, int]:
        missing = [p for p in PRIORITIES if p not in v]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if any(d <= 0 for d in v.values()):
            raise ValueError("days must be positive")
        return v


@lru_cache(maxsize=4)
def _load(path: str) -> PirSettings:
    return load_model(Path(path), PirSettings)


def load_pir_settings(path: Path | None = None) -> PirSettings:
    """Read and validate the PIR settings (cached per path)."""
    return _load(str(path or SETTINGS_PATH))
