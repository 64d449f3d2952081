"""Log format definitions as data: text formats, field aliases and the level vocabulary.

Everything here is read from ``runbooks/log-formats/`` and validated against the schema in
:mod:`analyzer.ingest.format_schema`, so a typo in a format file is reported with the file and the
field (``PolicyError``), never as a traceback. Validated content is remembered by its hash in the
user's cache directory: files that were checked before are read back without importing pydantic
(a tenth of a second off every ``ggen ingest``), and any change to them, or to the schema, is
validated again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# Group names that fill an ``events`` column of the same name.
EVENT_FIELDS: tuple[str, ...] = ("timestamp", "level", "service", "host", "message", "trace_id", "span_id", "request_id")


def formats_dir() -> Path:
    """The directory holding the shipped format definitions."""
    import runbooks

    return Path(runbooks.__file__).resolve().parent / "log-formats"


@dataclass(frozen=True)
class FormatSample:
    """A sample line and the fields it must produce (checked by the test suite)."""

    line: str
    expect: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TextFormat:
    """A plain-text log format: one anchored regex with named groups, like lnav's format files.
    The fields are documented in ``runbooks/log-formats/README.md``."""

    name: str
    title: str
    regex: str
    timestamp_format: list[str]
    description: str = ""
    year: str = "present"  # present | infer
    level_from: str = "level"  # level | syslog_pri | http_status | none
    multiline: bool = False
    priority: int = 0
    one_pass: bool = False
    group_alias: dict[str, str] = field(default_factory=dict)
    sample: list[FormatSample] = field(default_factory=list)

    @cached_property
    def group_names(self) -> list[str]:
        """Group names in the order RE2 numbers them (the order of their opening parenthesis)."""
        index = re.compile(self.regex).groupindex
        return [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])]

    @property
    def has_offset(self) -> bool:
        """Whether the timestamp carries its own UTC offset (else --tz applies)."""
        return any("%z" in f or "%Z" in f for f in self.timestamp_format)


@dataclass(frozen=True)
class LevelVocabulary:
    """Level words and numeric thresholds mapped onto the six normalized levels."""

    words: dict[str, list[str]]
    numeric_min: dict[str, int]
    default: str = "INFO"


@dataclass(frozen=True)
class FieldAliases:
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
                    # DuckDB struct member names are unique regardless of case: traceId and
                    # traceID become one member (the first spelling is the one read).
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


def _build(data: dict[str, Any]) -> FormatCatalog:
    """The catalog from validated data (see :func:`format_schema.validate_directory`)."""
    formats = [TextFormat(**{**f, "sample": [FormatSample(**s) for s in f["sample"]]}) for f in data["text"]]
    formats.sort(key=lambda f: (-f.priority, f.name))
    return FormatCatalog(text=tuple(formats), levels=LevelVocabulary(**data["levels"]), fields=FieldAliases(**data["fields"]))


def cache_dir() -> Path:
    """Where validated format data is remembered: ``GGEN_CACHE_DIR``, else the XDG cache home."""
    env = os.environ.get("GGEN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ggen"


def _fingerprint(directory: Path) -> str | None:
    """A hash of every definition file and of the schema they were checked against, or None
    when the directory cannot be read (validation then reports what is wrong)."""
    h = hashlib.sha256()
    try:
        import engine.policy

        for code in (Path(__file__).with_name("format_schema.py"), Path(engine.policy.__file__).with_name("loader.py")):
            h.update(code.read_bytes())
        text = sorted((directory / "text").glob("*.toml"))
        if not text:
            return None
        for p in [*text, directory / "levels.toml", directory / "fields.toml"]:
            data = p.read_bytes()
            h.update(f"\0{p.relative_to(directory)}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return None
    return h.hexdigest()


def _load(directory: Path) -> FormatCatalog:
    key = _fingerprint(directory)
    cached = cache_dir() / f"log-formats-{key}.json" if key else None
    if cached is not None:
        try:
            return _build(json.loads(cached.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not there yet, or unreadable: validate
    from analyzer.ingest.format_schema import validate_directory

    data = validate_directory(directory)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only home: validate every time
    return _build(data)


__all__ = ["EVENT_FIELDS", "LEVELS", "FieldAliases", "FormatCatalog", "FormatSample", "LevelVocabulary", "TextFormat", "cache_dir", "formats_dir", "load_catalog"]
