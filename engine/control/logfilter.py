"""The ``--filter`` language of ``ggen logs tail``, parsed by hand and never passed on as SQL.

Forms the runbooks print, and a few more::

    status_code >= 500
    status_code >= 400 AND status_code < 500
    validation_error                      (a bare word: found in the message or any field)
    'connection refused'                  (a quoted phrase; words match service, message or any field)
    level >= WARN AND NOT service = edge
    (status_code = 502 OR status_code = 504) dependency ~ upstream

Comparisons: ``= == != < <= > >=`` and ``~`` (contains, case-insensitive). A number on the right
compares numerically; text compares as text (``level`` compares by severity). Terms side by side
mean AND. ``AND``/``OR``/``NOT`` are case-insensitive; OR binds loosest. A field that a record does
not have makes its comparison false. The same expression evaluates on live log records
(:func:`matches`) and compiles to a parameterized DuckDB condition over the analyzer's ``events``
table (:func:`to_sql`); field names are checked against a strict pattern and every value is a
bound parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

import orjson

LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "NOTICE": 2, "WARN": 3, "WARNING": 3, "ERROR": 4, "CRITICAL": 5, "FATAL": 5}
COLUMN_FIELDS = ("level", "service", "message")
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_FILTER = 2000
MAX_DEPTH = 40
OPS = ("==", "!=", ">=", "<=", "=", ">", "<", "~")
ORDERING = ("<", "<=", ">", ">=")
# Fields the simulated fleet's log lines carry (engine/fleet/model.py); a live engine also knows
# every field its retained lines carry. Those marked numeric compare only with numbers.
FLEET_LOG_FIELDS = (
    "status_code", "method", "path", "duration_ms", "error_type", "revision", "previous_revision", "config_version",
    "dependency", "account_id", "region", "fault", "target", "replicas", "consecutive", "incident_id", "actor",
    "reason", "request_id", "trace_id", "query_id", "missing_index", "flag", "enabled", "plan", "circuit",
    "connections", "conflicts", "stranded", "queue_depth", "memory_pct", "cpu_pct", "rps", "ttl_s",
)
NUMERIC_FIELDS = frozenset({
    "status_code", "duration_ms", "revision", "previous_revision", "config_version", "replicas", "consecutive",
    "connections", "conflicts", "stranded", "queue_depth", "memory_pct", "cpu_pct", "rps", "ttl_s",
})


class FilterError(ValueError):
    """A filter that does not parse; the message says where."""


@dataclass(frozen=True)
class Text:
    """A bare word or quoted phrase: matches the message or any field (case-insensitive)."""

    text: str


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Union[str, float]


@dataclass(frozen=True)
class Not:
    expr: "Expr"


@dataclass(frozen=True)
class And:
    parts: tuple["Expr", ...]


@dataclass(frozen=True)
class Or:
    parts: tuple["Expr", ...]


Expr = Union[Text, Compare, Not, And, Or]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        (?P<op>==|!=|>=|<=|=|>|<|~) |
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*") |
        (?P<word>[^\s()'"=<>!~]+)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _tokens(src: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(src):
        if src[pos:].strip() == "":
            break
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            ch = src[pos:].lstrip()[:1]
            where = len(src) - len(src[pos:].lstrip())
            hint = " (an unterminated quote?)" if ch in "'\"" else ""
            raise FilterError(f"unexpected {ch!r} at column {where + 1}{hint}")
        kind = m.lastgroup or ""
        text = m.group(kind)
        start = m.start(kind)
        if kind == "str":
            body = text[1:-1]
            text = re.sub(r"\\(.)", r"\1", body)
        out.append((kind, text, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _tokens(src)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _kw(self, word: str) -> bool:
        t = self.peek()
        return t is not None and t[0] == "word" and t[1].upper() == word

    def parse(self) -> Expr:
        if not self.toks:
            raise FilterError("the filter is empty")
        e = self.or_()
        t = self.peek()
        if t is not None:
            raise FilterError(f"unexpected {t[1]!r} at column {t[2] + 1}")
        return e

    def or_(self) -> Expr:
        parts = [self.and_()]
        while self._kw("OR"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Expr:
        parts = [self.unary()]
        while True:
            t = self.peek()
            if t is None or t[0] == "rp" or self._kw("OR"):
                break
            if self._kw("AND"):
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Expr:
        if self._kw("NOT"):
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Expr:
        t = self.peek()
        if t is None:
            raise FilterError("the filter ends where a term was expected")
        kind, text, col = t
        if kind == "lp":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"parentheses nested deeper than {MAX_DEPTH}")
            e = self.or_()
            close = self.peek()
            if close is None or close[0] != "rp":
                raise FilterError(f"the parenthesis at column {col + 1} is not closed")
            self.take()
            self.depth -= 1
            return e
        if kind in ("rp", "op"):
            raise FilterError(f"unexpected {text!r} at column {col + 1}")
        if kind == "word" and text.upper() in ("AND", "OR"):
            raise FilterError(f"{text!r} at column {col + 1} needs a term before it")
        self.take()
        nxt = self.peek()
        if nxt is not None and nxt[0] == "op":
            op_tok = self.take()
            if kind != "word" or not FIELD_RE.match(text):
                raise FilterError(f"{text!r} at column {col + 1} is not a field name (letters, digits, _ and dots)")
            val = self.peek()
            if val is None or val[0] not in ("word", "str"):
                raise FilterError(f"{op_tok[1]!r} at column {op_tok[2] + 1} needs a value after it")
            self.take()
            field = text[6:] if text.startswith("attrs.") else text
            value: Union[str, float] = float(val[1]) if val[0] == "word" and _NUMBER.match(val[1]) else val[1]
            op = "=" if op_tok[1] == "==" else op_tok[1]
            return Compare(field, op, value)
        return Text(text)


def parse(src: str) -> Expr:
    """Parse a filter; raises FilterError naming the column of the problem."""
    if len(src) > MAX_FILTER:
        raise FilterError(f"the filter is longer than {MAX_FILTER} characters")
    return _Parser(src).parse()


def compares(expr: Expr) -> list[Compare]:
    """Every field comparison in ``expr``."""
    if isinstance(expr, Compare):
        return [expr]
    if isinstance(expr, Not):
        return compares(expr.expr)
    if isinstance(expr, (And, Or)):
        return [c for p in expr.parts for c in compares(p)]
    return []


def check(expr: Expr, known_fields: "set[str] | frozenset[str] | None" = None) -> None:
    """Refuse what would quietly match nothing: a field no line carries (when ``known_fields`` is
    given), an ordering against a word (``status_code >= abc``), a numeric field against a word,
    a level that is not one. Raises FilterError naming the field or the value."""
    for c in compares(expr):
        field = c.field
        if known_fields is not None and field not in COLUMN_FIELDS and field not in known_fields:
            shown = ", ".join(sorted(set(known_fields) | set(COLUMN_FIELDS)))
            raise FilterError(f"unknown field {field!r} (log lines carry: {shown})")
        if c.op == "~":
            continue
        if field == "level":
            if not (isinstance(c.value, str) and c.value.upper() in LEVELS):
                raise FilterError(f"level {c.op} {c.value!r}: not a level (use TRACE, DEBUG, INFO, WARN, ERROR or FATAL)")
            continue
        if isinstance(c.value, float):
            continue
        if c.op in ORDERING:
            raise FilterError(f"{field} {c.op} {c.value!r}: {c.op} compares numbers, and {c.value!r} is not one")
        if field in NUMERIC_FIELDS:
            raise FilterError(f"{field} {c.op} {c.value!r}: {field} is a number, and {c.value!r} is not one")


# ------------------------------------------------------------------ evaluation on records
def _field(rec: dict[str, Any], name: str) -> Any:
    if name in rec:
        return rec[name]
    fields = rec.get("fields") or rec.get("attrs")
    if isinstance(fields, dict):
        cur: Any = fields
        for part in name.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return None


def _cmp(a: Any, op: str, b: Any) -> bool:
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    return False


def _compare(rec: dict[str, Any], c: Compare) -> bool:
    v = _field(rec, c.field)
    if v is None:
        return False
    if c.op == "~":
        return str(c.value).lower() in str(v).lower()
    if c.field == "level" and isinstance(c.value, str) and c.value.upper() in LEVELS:
        have = LEVELS.get(str(v).upper())
        return have is not None and _cmp(have, c.op, LEVELS[c.value.upper()])
    if isinstance(c.value, float):
        if isinstance(v, bool):
            return False
        try:
            num = float(v)
        except (TypeError, ValueError):
            return False
        return _cmp(num, c.op, c.value)
    return _cmp(str(v), c.op, c.value)


def record_text(rec: dict[str, Any]) -> str:
    """What a bare word is searched in: the service, the message and the JSON of the other fields."""
    fields = rec.get("attrs") if "attrs" in rec else {k: v for k, v in rec.items() if k not in ("ts_ms", "ts", "level", "service", "message")}
    if isinstance(fields, str):
        attrs_text = fields
    else:
        attrs_text = orjson.dumps(fields, default=str).decode() if fields else ""
    return (str(rec.get("service", "")) + "\n" + str(rec.get("message", "")) + "\n" + attrs_text).lower()


def matches(expr: Expr, rec: dict[str, Any]) -> bool:
    """Does a log record (``level``, ``service``, ``message`` and other fields) match?"""
    if isinstance(expr, Text):
        return expr.text.lower() in record_text(rec)
    if isinstance(expr, Compare):
        return _compare(rec, expr)
    if isinstance(expr, Not):
        return not matches(expr.expr, rec)
    if isinstance(expr, And):
        return all(matches(p, rec) for p in expr.parts)
    return any(matches(p, rec) for p in expr.parts)


# ------------------------------------------------------------------ DuckDB
_LEVEL_SQL = "CASE upper(level) " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in LEVELS.items()) + " END"


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def to_sql(expr: Expr) -> tuple[str, list[Any]]:
    """A boolean SQL condition over ``events(level, service, message, attrs JSON)`` and its parameters.

    A comparison on a missing field is NULL in SQL; WHERE treats NULL as false, and AND/OR keep
    that meaning, so only terms under a NOT are wrapped in ``coalesce(..., false)`` (the runbooks'
    forms run as fast as the condition written by hand).
    """
    params: list[Any] = []

    def wrap(sql: str, strict: bool) -> str:
        return f"coalesce({sql}, false)" if strict else sql

    def go(e: Expr, strict: bool) -> str:
        if isinstance(e, Text):
            params.extend([_like(e.text)] * 3)
            return "(" + " OR ".join(wrap(f"lower({c}) LIKE ? ESCAPE '\\'", strict) for c in ("service", "message", "CAST(attrs AS VARCHAR)")) + ")"
        if isinstance(e, Compare):
            if not FIELD_RE.match(e.field):  # parse() already checked; never trust it twice
                raise FilterError(f"bad field name {e.field!r}")
            op = e.op
            if e.field in COLUMN_FIELDS:
                col = e.field
                if col == "level" and isinstance(e.value, str) and e.value.upper() in LEVELS and op != "~":
                    params.append(LEVELS[e.value.upper()])
                    return wrap(f"({_LEVEL_SQL}) {op} ?", strict)
                expr_sql = col
            else:
                params.append("$." + ".".join(f'"{p}"' for p in e.field.split(".")))
                expr_sql = "json_extract_string(attrs, ?)"
            if op == "~":
                params.append(_like(str(e.value)))
                return wrap(f"lower(CAST({expr_sql} AS VARCHAR)) LIKE ? ESCAPE '\\'", strict)
            if isinstance(e.value, float):
                params.append(e.value)
                return wrap(f"TRY_CAST({expr_sql} AS DOUBLE) {op} ?", strict)
            params.append(e.value)
            return wrap(f"CAST({expr_sql} AS VARCHAR) {op} ?", strict)
        if isinstance(e, Not):
            return f"(NOT {go(e.expr, True)})"
        joiner = " AND " if isinstance(e, And) else " OR "
        return "(" + joiner.join(go(p, strict) for p in e.parts) + ")"

    return go(expr, False), params
