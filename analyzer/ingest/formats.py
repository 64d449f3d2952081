"""Log format definitions as data: text formats, field aliases and the level vocabulary.

Everything here is read from ``runbooks/log-formats/`` and validated at load time, so a typo in a
format file is reported with the file and the field (``PolicyError``), never as a traceback.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from engine.policy.loader import PolicyError, StrictModel, load_model

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# Group names that fill an ``events`` column of the same name.
EVENT_FIELDS: tuple[str, ...] = ("timestamp", "level", "service", "host", "message", "trace_id", "span_id", "request_id")


def formats_dir() -> Path:
    """The directory holding the shipped format definitions."""
    import runbooks

    return Path(runbooks.__file__).resolve().parent / "log-formats"


class FormatSample(StrictModel):
    """A sample line and the fields it must produce (checked by the test suite)."""

    line: str
    expect: dict[str, str] = Field(default_factory=dict)


class TextFormat(StrictModel):
    """A plain-text log format: one anchored regex with named groups, like lnav's format files."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str = ""
    regex: str
    timestamp_format: list[str] = Field(min_length=1)
    year: Literal["present", "infer"] = "present"
    level_from: Literal["level", "syslog_pri", "http_status", "none"] = "level"
    multiline: bool = False
    priority: int = 0
    # The regex is one-pass: at every point the next character alone decides how the match goes
    # on (no alternatives or optional parts that can start alike). RE2 then reads its groups with
    # its fastest engine, four at a time, so they are read in batches; a pattern that is not
    # one-pass is read in one go (batches would each pay the slower engine).
    one_pass: bool = False
    group_alias: dict[str, str] = Field(default_factory=dict)
    sample: list[FormatSample] = Field(default_factory=list)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        if not value.startswith("^"):
            raise ValueError("regex must be anchored with ^")
        if "timestamp" not in compiled.groupindex:
            raise ValueError("regex needs a (?P<timestamp>...) group")
        if re.search(r"\(\?<?[=!]|\\[1-9]", value):
            raise ValueError("regex must not use look-around or back-references (RE2 has neither)")
        return value

    @model_validator(mode="after")
    def _groups_consistent(self) -> "TextFormat":
        groups = set(re.compile(self.regex).groupindex)
        if self.level_from == "syslog_pri" and "pri" not in groups:
            raise ValueError("level_from = 'syslog_pri' needs a (?P<pri>...) group")
        if self.level_from == "http_status" and "status" not in groups:
            raise ValueError("level_from = 'http_status' needs a (?P<status>...) group")
        if self.level_from == "level" and "level" not in groups and "level" not in self.group_alias.values():
            raise ValueError("level_from = 'level' needs a (?P<level>...) group")
        for src in self.group_alias:
            if src not in groups:
                raise ValueError(f"group_alias names {src!r}, which is not a group of the regex")
        return self

    @property
    def group_names(self) -> list[str]:
        """Group names in the order RE2 numbers them (the order of their opening parenthesis)."""
        index = re.compile(self.regex).groupindex
        return [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])]

    @property
    def has_offset(self) -> bool:
        """Whether the timestamp carries its own UTC offset (else --tz applies)."""
        return any("%z" in f or "%Z" in f for f in self.timestamp_format)


class LevelVocabulary(StrictModel):
    """Level words and numeric thresholds mapped onto the six normalized levels."""

    default: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] = "INFO"
    words: dict[Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], list[str]]
    numeric_min: dict[Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], int]

    @model_validator(mode="after")
    def _words_unique(self) -> "LevelVocabulary":
        seen: dict[str, str] = {}
        for level, words in self.words.items():
            for w in words:
                key = w.lower()
                if key in seen and seen[key] != level:
                    raise ValueError(f"level word {w!r} maps to both {seen[key]} and {level}")
                seen[key] = level
        return self


class FieldAliases(StrictModel):
    """Which record keys fill which column, tried in order."""

    ts: list[str]
    level: list[str]
    message: list[str]
    service: list[str]
    host: list[str]
    trace_id: list[str]
    span_id: list[str]
    request_id: list[str]
    metric: list[str]
    value: list[str]
    labels: list[str]

    def event_fields(self) -> dict[str, list[str]]:
        """The aliases of the ``events`` columns."""
        return {k: getattr(self, k) for k in ("ts", "level", "message", "service", "host", "trace_id", "span_id", "request_id")}

    def all_keys(self) -> list[str]:
        """Every top-level key named by an event alias (the part before the first dot, and dotted literals)."""
        out: list[str] = []
        seen: set[str] = set()
        for aliases in self.event_fields().values():
            for a in aliases:
                for k in (a, a.split(".")[0]):
                    # DuckDB matches JSON keys case-insensitively: traceId and traceID are one key.
                    if k.lower() not in seen:
                        seen.add(k.lower())
                        out.append(k)
        return out


@dataclass(frozen=True)
class FormatCatalog:
    """Everything loaded from ``runbooks/log-formats``."""

    text: tuple[TextFormat, ...]
    levels: LevelVocabulary
    fields: FieldAliases

    def text_format(self, name: str) -> TextFormat:
        """The text format called ``name`` (KeyError if there is none)."""
        for f in self.text:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def text_names(self) -> list[str]:
        return [f.name for f in self.text]


def load_catalog(directory: Path | None = None) -> FormatCatalog:
    """Load and validate every definition in ``directory`` (default: the shipped one)."""
    if directory is None:
        return _default_catalog()
    return _load(directory)


@lru_cache(maxsize=1)
def _default_catalog() -> FormatCatalog:
    return _load(formats_dir())


def _load(directory: Path) -> FormatCatalog:
    text_dir = directory / "text"
    if not text_dir.is_dir():
        raise PolicyError(text_dir, None, "directory of text formats not found")
    formats = [load_model(p, TextFormat) for p in sorted(text_dir.glob("*.toml"))]
    names: dict[str, Path] = {}
    for p, f in zip(sorted(text_dir.glob("*.toml")), formats):
        if f.name in names:
            raise PolicyError(p, "name", f"format {f.name!r} is also defined in {names[f.name]}")
        if f.name != p.stem:
            raise PolicyError(p, "name", f"must equal the file name {p.stem!r}")
        names[f.name] = p
    formats.sort(key=lambda f: (-f.priority, f.name))
    levels = load_model(directory / "levels.toml", LevelVocabulary)
    fields = load_model(directory / "fields.toml", FieldAliases)
    return FormatCatalog(text=tuple(formats), levels=levels, fields=fields)
