"""The schema of ``runbooks/log-formats`` (pydantic): what a format file may say, checked with
errors that name the file and the field.

:mod:`analyzer.ingest.formats` imports this only when the files differ from the last ones it
validated, so an ingest run does not pay for importing pydantic and building these models.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.policy.loader import PolicyError, StrictModel, load_model

Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


class FormatSampleModel(StrictModel):
    """A sample line and the fields it must produce (checked by the test suite)."""

    line: str
    expect: dict[str, str] = Field(default_factory=dict)


class TextFormatModel(StrictModel):
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
    sample: list[FormatSampleModel] = Field(default_factory=list)

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
    def _groups_consistent(self) -> "TextFormatModel":
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


class LevelVocabularyModel(StrictModel):
    """Level words and numeric thresholds mapped onto the six normalized levels."""

    default: Level = "INFO"
    words: dict[Level, list[str]]
    numeric_min: dict[Level, int]

    @model_validator(mode="after")
    def _words_unique(self) -> "LevelVocabularyModel":
        seen: dict[str, str] = {}
        for level, words in self.words.items():
            for w in words:
                key = w.lower()
                if key in seen and seen[key] != level:
                    raise ValueError(f"level word {w!r} maps to both {seen[key]} and {level}")
                seen[key] = level
        return self


class FieldAliasesModel(StrictModel):
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


def validate_directory(directory: Path) -> dict[str, Any]:
    """Validate every definition in ``directory``; the checked data as plain JSON-able values
    (``{"text": [...], "levels": {...}, "fields": {...}}``), or PolicyError naming file and field."""
    text_dir = directory / "text"
    if not text_dir.is_dir():
        raise PolicyError(text_dir, None, "directory of text formats not found")
    paths = sorted(text_dir.glob("*.toml"))
    formats = [load_model(p, TextFormatModel) for p in paths]
    names: dict[str, Path] = {}
    for p, f in zip(paths, formats):
        if f.name in names:
            raise PolicyError(p, "name", f"format {f.name!r} is also defined in {names[f.name]}")
        if f.name != p.stem:
            raise PolicyError(p, "name", f"must equal the file name {p.stem!r}")
        names[f.name] = p
    return {
        "text": [f.model_dump() for f in formats],
        "levels": load_model(directory / "levels.toml", LevelVocabularyModel).model_dump(),
        "fields": load_model(directory / "fields.toml", FieldAliasesModel).model_dump(),
    }
