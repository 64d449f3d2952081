"""Guess a file's format from its first lines, the way Toolong and lnav do: try each parser and
keep the one that explains the most lines."""
from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from analyzer.ingest.formats import FormatCatalog

SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 200
# Formats a user may name with --format. ``text`` means "detect among the text formats".
FORMAT_CHOICES: tuple[str, ...] = ("auto", "jsonl", "logfmt", "text", "otlp", "csv")

_LOGFMT_TOKEN = re.compile(r'[^\s="]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)')
_PRETTY_JSON = re.compile(rb'(?:\[\s*[{\]]|\{\s*(?:"|\}|$))')
_OTLP_KEYS = {"resourceSpans", "resourceLogs", "resourceMetrics", "resource_spans", "resource_logs", "resource_metrics"}


@dataclass(frozen=True)
class Detection:
    """What a file holds: ``format`` (jsonl, logfmt, otlp, csv, json-array or a text format name),
    ``kind`` (events or metrics) and how sure the guess is (share of sampled lines explained)."""

    format: str
    kind: str = "events"
    score: float = 1.0
    crlf: bool = False


def sniff_lines(head: bytes) -> list[str]:
    """The complete lines in ``head`` (the last one may be cut), decoded leniently."""
    text = head.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if len(head) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]
    return [ln.rstrip("\r") for ln in lines[:SNIFF_LINES]]


def _json_objects(lines: list[str]) -> list[dict]:
    out = []
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        try:
            v = orjson.loads(s)
        except orjson.JSONDecodeError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


def _is_metric_record(obj: dict, catalog: FormatCatalog) -> bool:
    f = catalog.fields
    has_metric = any(k in obj for k in f.metric) or ("metric" in obj and isinstance(obj["metric"], dict))
    has_value = "value" in obj
    has_message = any(k in obj for k in f.message)
    return has_metric and has_value and not has_message


def logfmt_share(lines: list[str]) -> float:
    """Share of non-blank lines made only of ``key=value`` tokens (at least two of them)."""
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        return 0.0
    good = 0
    for ln in nonblank:
        tokens = _LOGFMT_TOKEN.findall(ln)
        if len(tokens) >= 2 and len(_LOGFMT_TOKEN.sub("", ln).strip()) == 0:
            good += 1
    return good / len(nonblank)


def text_scores(lines: list[str], catalog: FormatCatalog) -> list[tuple[float, int, str]]:
    """(share of lines matched, priority, name) for every text format, best first."""
    nonblank = [ln for ln in lines if ln.strip()]
    scores = []
    for f in catalog.text:
        rx = re.compile(f.regex)
        hits = sum(1 for ln in nonblank if rx.match(ln))
        share = hits / len(nonblank) if nonblank else 0.0
        scores.append((share, f.priority, f.name))
    scores.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return scores


def best_text_format(lines: list[str], catalog: FormatCatalog) -> Detection | None:
    """The text format explaining the most lines, or None when none matches any line."""
    scores = text_scores(lines, catalog)
    if not scores or scores[0][0] == 0:
        return None
    return Detection(scores[0][2], "events", scores[0][0])


def _csv_header(first: str) -> list[str] | None:
    if "," not in first or first.lstrip().startswith("{"):
        return None
    import csv

    try:
        cols = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    cols = [c.strip() for c in cols]
    if len(cols) < 2 or any(not c or len(c) > 64 for c in cols):
        return None
    if not all(re.fullmatch(r"[A-Za-z_@][\w.@/-]*", c) for c in cols):
        return None
    return cols


def csv_kind(header: list[str], catalog: FormatCatalog) -> str:
    """``metrics`` for a header with a value column and no message column, else ``events``."""
    lower = {c.lower() for c in header}
    if "value" in lower and not (lower & {m.lower() for m in catalog.fields.message}):
        return "metrics"
    return "events"


def detect(head: bytes, catalog: FormatCatalog, forced: str = "auto", whole: bytes | None = None) -> Detection:
    """Decide how to read a file from its first bytes; ``forced`` narrows the choice."""
    if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (DuckDB's reader skips it too)
        head = head[3:]
    crlf = b"\r\n" in head
    lines = sniff_lines(head)
    nonblank = [ln for ln in lines if ln.strip()]
    stripped = head.lstrip()

    def done(d: Detection) -> Detection:
        return Detection(d.format, d.kind, d.score, crlf)

    if forced in ("auto", "otlp", "jsonl"):
        if forced in ("auto", "otlp") and stripped.startswith(b"{") and any(f'"{k}"'.encode() in stripped[:512] for k in _OTLP_KEYS):
            return done(Detection("otlp", "events", 1.0))
        objs = _json_objects(lines)
        if objs and any(_OTLP_KEYS & set(o) for o in objs):
            return done(Detection("otlp", "events", 1.0))
        if forced in ("auto", "jsonl") and stripped.startswith(b"[") and _PRETTY_JSON.match(stripped):
            return done(Detection("json-array", "events", 1.0))
        if forced in ("auto", "jsonl") and nonblank and len(objs) >= max(1, int(0.5 * len(nonblank))):
            metric = sum(1 for o in objs if _is_metric_record(o, catalog))
            kind = "metrics" if metric >= 0.8 * len(objs) else "events"
            return done(Detection("jsonl", kind, len(objs) / len(nonblank)))
        if _PRETTY_JSON.match(stripped) and not objs:
            # A pretty-printed document: an OTLP export or an array of records (gcloud --format=json).
            if forced in ("auto", "otlp") and any(k.encode() in head for k in _OTLP_KEYS):
                return done(Detection("otlp", "events", 1.0))
            if forced in ("auto", "jsonl") and stripped.startswith(b"["):
                return done(Detection("json-array", "events", 1.0))
            if forced in ("auto", "jsonl") and stripped.startswith(b"{"):
                return done(Detection("json-array", "events", 0.5))
        if forced == "otlp":
            return done(Detection("otlp", "events", 0.0))
        if forced == "jsonl":
            return done(Detection("jsonl", "events", 0.0))
    if forced in ("auto", "csv") and nonblank:
        header = _csv_header(nonblank[0])
        if header is not None and (forced == "csv" or _looks_like_csv(nonblank, len(header))):
            return done(Detection("csv", csv_kind(header, catalog), 1.0))
        if forced == "csv":
            return done(Detection("csv", "events", 0.0))
    if forced in ("auto", "logfmt", "text"):
        text = best_text_format(lines, catalog) if forced != "logfmt" else None
        lf = logfmt_share(lines) if forced != "text" else 0.0
        if forced == "logfmt" or (lf > 0 and (text is None or lf > text.score)):
            return done(Detection("logfmt", "events", lf))
        if text is not None:
            return done(text)
        if forced == "text":
            # Nothing matched: the first format by priority reads it, and every line is a reject.
            return done(Detection(catalog.text[0].name, "events", 0.0))
    if forced not in ("auto", "jsonl", "logfmt", "text", "otlp", "csv"):
        catalog.text_format(forced)
        return done(Detection(forced, "events", 1.0))
    return done(Detection("unknown", "events", 0.0))


def _looks_like_csv(lines: list[str], ncols: int) -> bool:
    """Whether most sampled records (parsed as CSV, so quoted commas and newlines count right)
    have as many fields as the header."""
    import csv

    try:
        records = list(csv.reader(lines[1:]))
    except csv.Error:
        return False
    records = [r for r in records if r]
    if not records:
        return True
    same = sum(1 for r in records if len(r) == ncols)
    return same >= 0.5 * len(records)
