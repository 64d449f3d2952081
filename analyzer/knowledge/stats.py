"""Knowledge-base metrics (section 05): queries, zero-result gaps, coverage, solution effectiveness.

Every search typed by a person is appended to ``<data dir>/knowledge-queries.jsonl``; a query that
found nothing is a gap in the knowledge base, and the stats list the most frequent ones.
"""
from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine.clock import WallClock, iso_utc
from engine.datadir import DataDir

from .entry import CAUSES, INCIDENT_TYPES, PATTERNS, SEVERITIES, Entry
from .query import echo

if TYPE_CHECKING:
    from .index import KnowledgeBase, SearchResult

QUERY_LOG_NAME = "knowledge-queries.jsonl"


def query_log_path(data_dir: DataDir) -> Path:
    return data_dir.root / QUERY_LOG_NAME


def log_query(data_dir: DataDir, result: "SearchResult", now_ms: int | None = None) -> None:
    """Append one search to the query log. A log that cannot be written becomes a warning."""
    now = now_ms if now_ms is not None else WallClock().now_ms()
    record = {
        "at": iso_utc(now),
        "at_ms": now,
        "query": result.request.to_json(),
        "hits": result.total,
        "top": [h.entry_id for h in result.hits[:3]],
        "fallback": any(w.startswith("query syntax:") for w in result.warnings),
    }
    line = orjson.dumps(record) + b"\n"
    try:
        data_dir.ensure()
        fd = os.open(query_log_path(data_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        result.warnings.append(f"{query_log_path(data_dir)}: could not record this query ({exc.strerror or exc})")


def read_query_log(data_dir: DataDir) -> tuple[list[dict[str, Any]], list[str]]:
    """All logged queries, and one problem line per record that could not be read."""
    path = query_log_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror or exc}"]
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("hits"), int) or not isinstance(rec.get("at_ms"), int):
                raise ValueError("missing 'hits' or 'at_ms'")
        except (orjson.JSONDecodeError, ValueError) as exc:
            problems.append(f"{path}: line {n}: unreadable query record ({exc})")
            continue
        out.append(rec)
    return out, problems


@dataclass
class PatternStats:
    """How one solution pattern fared across the entries that tried it."""

    pattern: str
    tried: int = 0
    worked: int = 0
    partial: int = 0
    failed: int = 0
    mttr_min_when_worked: list[float] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def effectiveness_pct(self) -> float:
        return round(100.0 * self.worked / self.tried, 1) if self.tried else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "tried": self.tried,
            "worked": self.worked,
            "partial": self.partial,
            "failed": self.failed,
            "effectiveness_pct": self.effectiveness_pct,
            "median_mttr_min_when_worked": round(statistics.median(self.mttr_min_when_worked), 1) if self.mttr_min_when_worked else None,
            "failures": [{"entry": e, "lesson": note} for e, note in self.failures],
        }


@dataclass
class KnowledgeStats:
    """Everything ``ggen knowledge stats`` reports."""

    entries: int
    invalid: list[str]
    by_type: dict[str, int]
    by_severity: dict[str, int]
    by_cause: dict[str, int]
    causes_without_entry: list[str]
    outcomes: dict[str, int]
    mttr_by_type: dict[str, dict[str, Any]]
    kb_assisted_pct: float
    mttr_kb_assisted_min: float | None
    mttr_not_assisted_min: float | None
    repeat_rate_pct: float
    repeats: list[tuple[str, str]]
    patterns: list[PatternStats]
    queries_total: int
    queries_window: int
    zero_result_total: int
    zero_result_rate_pct: float
    fallback_queries: int
    gaps: list[tuple[str, int]]
    coverage: dict[str, dict[str, Any]]
    coverage_pct: float
    coverage_target_pct: float
    min_entries: int
    query_window_days: int
    repeat_window_days: int
    log_problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "invalid_entries": self.invalid,
            "entries_by_type": self.by_type,
            "entries_by_severity": self.by_severity,
            "entries_by_cause": self.by_cause,
            "causes_without_entry": self.causes_without_entry,
            "outcomes": self.outcomes,
            "mttr_by_type": self.mttr_by_type,
            "kb_assisted_pct": self.kb_assisted_pct,
            "mttr_kb_assisted_min": self.mttr_kb_assisted_min,
            "mttr_not_assisted_min": self.mttr_not_assisted_min,
            "repeat_rate_pct": self.repeat_rate_pct,
            "repeat_window_days": self.repeat_window_days,
            "repeats": [{"entry": a, "repeat_of": b} for a, b in self.repeats],
            "solution_patterns": [p.to_json() for p in self.patterns],
            "queries": {
                "total": self.queries_total,
                "window_days": self.query_window_days,
                "in_window": self.queries_window,
                "zero_result": self.zero_result_total,
                "zero_result_rate_pct": self.zero_result_rate_pct,
                "syntax_fallbacks": self.fallback_queries,
                "gaps": [{"query": q, "count": n} for q, n in self.gaps],
                "log_problems": self.log_problems,
            },
            "symptom_coverage": {
                "by_type": self.coverage,
                "overall_pct": self.coverage_pct,
                "target_pct": self.coverage_target_pct,
            },
            "min_entries_target": self.min_entries,
        }


# The logged request's keys -> the flags of `ggen knowledge search` that set them.
_FILTER_FLAGS = {"types": "--type", "severities": "--severity", "causes": "--cause", "services": "--service"}


def _query_label(q: dict[str, Any], echo_chars: int) -> str:
    """The query as the search command line that asked it, long texts cut to ``echo_chars``."""
    parts = []
    for k in ("symptoms", "root_cause", "solution", "text"):
        if q.get(k):
            parts.append(f"--{k.replace('_', '-')} {echo(str(q[k]), echo_chars)}")
    for k, flag in _FILTER_FLAGS.items():
        if q.get(k):
            parts.append(f"{flag} {','.join(q[k])}")
    return " ".join(parts) or "(filters only)"


def compute_stats(kb: "KnowledgeBase", now_ms: int | None = None) -> KnowledgeStats:
    """Compute the metrics over the entries, the query log and the coverage probes."""
    st = kb.settings.stats
    now = now_ms if now_ms is not None else WallClock().now_ms()
    entries, errors = kb.entries()
    by_type = {t: 0 for t in INCIDENT_TYPES}
    by_sev = {s: 0 for s in SEVERITIES}
    by_cause = {c: 0 for c in CAUSES}
    outcomes = {"resolved": 0, "escalated": 0}
    mttr: dict[str, list[float]] = defaultdict(list)
    patterns = {p: PatternStats(p) for p in PATTERNS}
    for e in entries:
        m = e.meta
        for t in m.incident_types:
            by_type[t] += 1
            mttr[t].append(m.mttr_minutes)
        by_sev[m.severity] += 1
        for c in m.causes:
            by_cause[c] += 1
        outcomes[m.outcome] += 1
        for mit in m.mitigations:
            ps = patterns[mit.pattern]
            ps.tried += 1
            if mit.outcome == "worked":
                ps.worked += 1
                ps.mttr_min_when_worked.append(m.mttr_minutes)
            elif mit.outcome == "partial":
                ps.partial += 1
            else:
                ps.failed += 1
                ps.failures.append((e.entry_id, mit.note or "(no note)"))
    assisted = [e.meta.mttr_minutes for e in entries if e.meta.kb_assisted]
    unassisted = [e.meta.mttr_minutes for e in entries if not e.meta.kb_assisted]
    repeats = _repeats(entries, st.repeat_window_days)

    log, problems = read_query_log(kb.data_dir)
    window_start = now - st.query_window_days * 86_400_000
    zero = [q for q in log if q["hits"] == 0]
    gaps = Counter(_query_label(q.get("query", {}), kb.settings.limits.echo_chars) for q in zero).most_common(st.gap_list_limit)

    coverage: dict[str, dict[str, Any]] = {}
    covered_total = probes_total = 0
    if entries:
        kb.refresh()
    from .index import SearchRequest

    for t in INCIDENT_TYPES:
        probes = kb.settings.coverage.get(t, [])  # type: ignore[call-overload]
        missing = []
        for probe in probes:
            res = kb.search(SearchRequest(symptoms=probe, limit=st.coverage_top_n), refresh=False, log=False)
            if not any(t in h.incident_types for h in res.hits):
                missing.append(probe)
        n = len(probes)
        covered = n - len(missing)
        covered_total += covered
        probes_total += n
        coverage[t] = {"probes": n, "covered": covered, "pct": round(100.0 * covered / n, 1) if n else 0.0, "missing": missing}

    return KnowledgeStats(
        entries=len(entries),
        invalid=[str(e) for e in errors],
        by_type=by_type,
        by_severity=by_sev,
        by_cause=by_cause,
        causes_without_entry=[c for c, n in by_cause.items() if n == 0],
        outcomes=outcomes,
        mttr_by_type={
            t: {"entries": len(v), "mean_min": round(statistics.fmean(v), 1), "median_min": round(statistics.median(v), 1)}
            for t, v in sorted(mttr.items())
        },
        kb_assisted_pct=round(100.0 * len(assisted) / len(entries), 1) if entries else 0.0,
        mttr_kb_assisted_min=round(statistics.fmean(assisted), 1) if assisted else None,
        mttr_not_assisted_min=round(statistics.fmean(unassisted), 1) if unassisted else None,
        repeat_rate_pct=round(100.0 * len(repeats) / len(entries), 1) if entries else 0.0,
        repeats=repeats,
        patterns=sorted((p for p in patterns.values() if p.tried), key=lambda p: (-p.tried, p.pattern)),
        queries_total=len(log),
        queries_window=sum(1 for q in log if q["at_ms"] >= window_start),
        zero_result_total=len(zero),
        zero_result_rate_pct=round(100.0 * len(zero) / len(log), 1) if log else 0.0,
        fallback_queries=sum(1 for q in log if q.get("fallback")),
        gaps=gaps,
        coverage=coverage,
        coverage_pct=round(100.0 * covered_total / probes_total, 1) if probes_total else 0.0,
        coverage_target_pct=st.coverage_target_pct,
        min_entries=st.min_entries,
        query_window_days=st.query_window_days,
        repeat_window_days=st.repeat_window_days,
        log_problems=problems,
    )


def _repeats(entries: list[Entry], window_days: int) -> list[tuple[str, str]]:
    """Entries preceded by another entry of a shared incident type within the window
    (the ``prevention_failure_detected`` rule of section 06)."""
    out: list[tuple[str, str]] = []
    ordered = sorted(entries, key=lambda e: (e.meta.date, e.entry_id))
    for i, e in enumerate(ordered):
        start = e.meta.date - timedelta(days=window_days)
        for prev in reversed(ordered[:i]):
            if prev.meta.date < start:
                break
            if prev.meta.date <= e.meta.date and set(prev.meta.incident_types) & set(e.meta.incident_types):
                out.append((e.entry_id, prev.entry_id))
                break
    return out
