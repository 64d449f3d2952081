"""Search tuning for the knowledge base, read from ``runbooks/knowledge-base/search.toml``.

Field boosts, fuzzy distances, synonyms, the symptom probes behind the coverage metric and the
signal vocabulary of similar-incident suggestions are data a team tunes, not constants in code.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from engine.policy.loader import StrictModel, load_model

from .entry import Cause, IncidentType

TextField = Literal["title", "symptoms", "root_cause", "resolution", "prevention", "body", "all"]
# Stored text fields (snippets come from these); "all" is every one of them in one unstored field.
TEXT_FIELDS: tuple[str, ...] = ("title", "symptoms", "root_cause", "resolution", "prevention", "body")
SearchFlag = Literal["symptoms", "root_cause", "solution", "text"]

PACKAGED_DIR = Path(__file__).resolve().parents[2] / "runbooks" / "knowledge-base"
SETTINGS_PATH = PACKAGED_DIR / "search.toml"


class FuzzySettings(StrictModel):
    """Typo tolerance: only for words the index has never seen."""

    min_chars: int = Field(ge=3, le=20)
    long_from_chars: int = Field(ge=4, le=30)
    distance_short: int = Field(ge=0, le=2)
    distance_long: int = Field(ge=0, le=2)
    boost: float = Field(gt=0, le=100)
    correction_boost: float = Field(gt=0, le=100)


class QueryLimits(StrictModel):
    """Bounds on what one query may ask of the index."""

    max_chars: int = Field(ge=16, le=100_000)
    max_clauses: int = Field(ge=1, le=1024)
    max_depth: int = Field(ge=1, le=64)
    echo_chars: int = Field(ge=8, le=10_000)


class SimilarSettings(StrictModel):
    """How an open incident's type and signals become a query."""

    text_weight: float = Field(ge=0, le=100)
    type_weight: float = Field(ge=0, le=100)
    secondary_type_weight: float = Field(ge=0, le=100)
    cause_weight: float = Field(ge=0, le=100)
    service_weight: float = Field(ge=0, le=100)
    candidates_per_result: int = Field(ge=1, le=100)
    min_candidates: int = Field(ge=1, le=10_000)
    recent_change_s: int = Field(ge=0, le=30 * 86_400)
    signal_terms: dict[str, str]
    signal_thresholds: dict[str, float] = Field(default_factory=dict)


class StatsSettings(StrictModel):
    """Windows and targets of ``ggen knowledge stats`` (section 05 metrics)."""

    query_window_days: int = Field(ge=1, le=3660)
    repeat_window_days: int = Field(ge=1, le=3660)
    coverage_top_n: int = Field(ge=1, le=50)
    coverage_target_pct: float = Field(ge=0, le=100)
    min_entries: int = Field(ge=0)
    gap_list_limit: int = Field(ge=1, le=1000)


class SearchSettings(StrictModel):
    """Everything the search engine reads from search.toml."""

    fields: dict[SearchFlag, dict[TextField, float]]
    keys_boost: float = Field(gt=0)
    synonym_boost: float = Field(gt=0)
    tie_breaker: float = Field(ge=0, le=1)
    phrase_slop: int = Field(ge=0, le=10)
    proximity_boost: float = Field(ge=0, le=100)
    proximity_slop: int = Field(ge=0, le=10)
    snippet_max_chars: int = Field(ge=40, le=2000)
    fuzzy: FuzzySettings
    limits: QueryLimits
    stopwords: list[str]
    synonyms: dict[str, list[str]]
    type_aliases: dict[str, IncidentType]
    similar: SimilarSettings
    stats: StatsSettings
    coverage: dict[IncidentType, list[str]]
    cause_keywords: dict[Cause, list[str]]

    @model_validator(mode="after")
    def _complete(self) -> "SearchSettings":
        for flag in SearchFlag.__args__:  # type: ignore[attr-defined]
            if not self.fields.get(flag):
                raise ValueError(f"fields.{flag} is missing: every search flag needs its field boosts")
        for word, alts in self.synonyms.items():
            if word != word.lower() or not alts:
                raise ValueError(f"synonyms.{word}: keys are lowercase words with at least one expansion")
        return self


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> SearchSettings:
    return load_model(Path(path), SearchSettings)


def load_settings(path: Path | None = None) -> SearchSettings:
    """Load (and cache by mtime) the search settings; PolicyError names the file and field."""
    p = Path(path) if path is not None else SETTINGS_PATH
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = -1
    return _load(str(p), mtime)
