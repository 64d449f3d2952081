"""Which service failed first: the deepest failing span (or the span with the most time of its
own in a slow trace) of each trace in the incident, beyond what the baseline already showed, and
the order in which services left their baselines; ranked, with the evidence for each."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analyzer.timeline.model import CauseCandidate, Onset, Origin
from analyzer.timeline.settings import TimelineSettings

TRACE_WEIGHT = 0.6
ONSET_WEIGHT = 0.4
ONSET_SCALE_MS = 60_000  # an onset a minute after the earliest counts about a third as much


@dataclass
class TraceFinding:
    """What one trace says about where it failed or spent its time."""

    trace_id: str
    t: int
    culprit: str
    path: list[str]  # services from the root down to the culprit
    origin: Origin
    why: str


@dataclass
class TraceEvidence:
    failing: list[TraceFinding] = field(default_factory=list)
    slow: list[TraceFinding] = field(default_factory=list)
    slow_limit_ms: float | None = None


def _index(spans: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in spans.iter_rows(named=True):
        by_trace[row["trace_id"]].append(row)
    return by_trace


def _path(span: dict[str, Any], by_id: dict[str, dict[str, Any]], alias: Any) -> list[str]:
    chain = []
    cur: dict[str, Any] | None = span
    seen = set()
    while cur is not None and cur["span_id"] not in seen:
        seen.add(cur["span_id"])
        chain.append(alias(cur["service"]))
        cur = by_id.get(cur["parent"]) if cur["parent"] else None
    chain.reverse()
    out: list[str] = []
    for s in chain:
        if not out or out[-1] != s:
            out.append(s)
    return out


def _culprit(span: dict[str, Any], alias: Any) -> str:
    """The service a failing span points at: the callee of a failed client call, else its own."""
    if span.get("peer") and span.get("kind") == "CLIENT":
        return alias(span["peer"])
    return alias(span["service"])


def read_traces(traces: pl.DataFrame, spans: pl.DataFrame, baseline_end: int, settings: TimelineSettings) -> TraceEvidence:
    """For each failing trace, its deepest failing span; for each slow trace (root span beyond
    ``slow_trace_factor`` times the baseline P95 of its root service), its span with the most own time."""
    alias = settings.alias
    out = TraceEvidence()
    if traces.height == 0 or spans.height == 0:
        return out
    base = traces.filter((pl.col("t") < baseline_end) & pl.col("root_ms").is_not_null())
    limits: dict[str, float] = {}
    for (root,), grp in base.group_by(["root_service"]):
        if grp.height >= 5:
            limits[str(root)] = float(grp.get_column("root_ms").quantile(0.95, "nearest")) * settings.anomaly.slow_trace_factor  # type: ignore[operator]
    if limits:
        out.slow_limit_ms = min(limits.values())
    by_trace = _index(spans)
    summary = {r["trace_id"]: r for r in traces.iter_rows(named=True)}
    for tid in sorted(by_trace, key=lambda x: (summary.get(x, {}).get("t") or 0, x)):
        rows = by_trace[tid]
        info = summary.get(tid)
        if info is None:
            continue
        by_id = {r["span_id"]: r for r in rows}
        depth: dict[str, int] = {}

        def d(r: dict[str, Any]) -> int:
            n = 0
            cur = r
            seen = set()
            while cur.get("parent") and cur["parent"] in by_id and cur["span_id"] not in seen:
                seen.add(cur["span_id"])
                cur = by_id[cur["parent"]]
                n += 1
            return n

        for r in rows:
            depth[r["span_id"]] = d(r)
        failing = [r for r in rows if r["status"] == "ERROR"]
        if failing:
            deepest = max(failing, key=lambda r: (depth[r["span_id"]], -r["t"], r["span_id"]))
            who = _culprit(deepest, alias)
            path = _path(deepest, by_id, alias)
            if path[-1] != who:
                path.append(who)
            why = f"{alias(deepest['service'])} span '{deepest['name']}' failed" + (f": {deepest['message']}" if deepest["message"] else "")
            out.failing.append(TraceFinding(tid, int(info["t"]), who, path, Origin("trace", deepest["file"], int(deepest["idx"]), tid, deepest["span_id"]), why))
            continue
        limit = limits.get(str(info["root_service"]))
        if limit is None or info["root_ms"] is None or float(info["root_ms"]) <= limit:
            continue
        children: dict[str, float] = defaultdict(float)
        for r in rows:
            if r["parent"]:
                children[r["parent"]] += float(r["duration_ms"] or 0.0)
        own = {r["span_id"]: max(0.0, float(r["duration_ms"] or 0.0) - children[r["span_id"]]) for r in rows}
        top = max(rows, key=lambda r: (own[r["span_id"]], r["span_id"]))
        who = alias(top["service"])
        why = f"{who} span '{top['name']}' spent {own[top['span_id']]:.0f} ms of the trace's {float(info['root_ms']):.0f} ms itself"
        out.slow.append(TraceFinding(tid, int(info["t"]), who, _path(top, by_id, alias), Origin("trace", top["file"], int(top["idx"]), tid, top["span_id"]), why))
    return out


def _excess(findings: list[TraceFinding], period: tuple[int, int], baseline: tuple[int, int]) -> tuple[Counter[str], dict[str, TraceFinding]]:
    """Count per culprit inside the incident period beyond the baseline's rate."""
    inside: Counter[str] = Counter()
    before: Counter[str] = Counter()
    example: dict[str, TraceFinding] = {}
    for f in findings:
        if period[0] <= f.t <= period[1]:
            inside[f.culprit] += 1
            example.setdefault(f.culprit, f)
        elif baseline[0] <= f.t < baseline[1]:
            before[f.culprit] += 1
    ratio = (period[1] - period[0]) / max(1, baseline[1] - baseline[0])
    out: Counter[str] = Counter()
    for svc, n in inside.items():
        extra = n - before[svc] * ratio
        if extra >= 1:
            out[svc] = int(round(extra))
    return out, example


def rank_causes(
    evidence: TraceEvidence,
    onsets: list[Onset],
    period: tuple[int, int],
    baseline: tuple[int, int],
    settings: TimelineSettings,
) -> tuple[list[CauseCandidate], list[tuple[str, int]]]:
    """Rank candidate services; also the propagation chains (``effect <- cause``) seen in traces."""
    skip = set(settings.services.not_candidates)
    fail, fail_ex = _excess(evidence.failing, period, baseline)
    slow, slow_ex = _excess(evidence.slow, period, baseline)
    total = sum(fail.values()) + sum(slow.values())
    first_onset: dict[str, Onset] = {}
    for o in sorted(onsets, key=lambda o: (o.at_ms, o.series)):
        if o.service and o.service not in skip and o.at_ms <= period[1]:
            first_onset.setdefault(o.service, o)
    services = (set(fail) | set(slow) | set(first_onset)) - skip
    if not services:
        return [], []
    earliest = min((o.at_ms for o in first_onset.values()), default=None)
    cands = []
    for svc in services:
        share = (fail[svc] + slow[svc]) / total if total else 0.0
        o = first_onset.get(svc)
        timing = math.exp(-(o.at_ms - earliest) / ONSET_SCALE_MS) if (o is not None and earliest is not None) else 0.0
        score = (TRACE_WEIGHT * share + ONSET_WEIGHT * timing) if total else timing
        c = CauseCandidate(service=svc, rank=0, score=score, failing_traces=fail[svc], slow_traces=slow[svc], onset_ms=o.at_ms if o else None)
        if fail[svc]:
            ex = fail_ex[svc]
            c.reasons.append(f"deepest failing span in {fail[svc]} failing trace(s) beyond the baseline, e.g. {ex.why}")
            c.evidence.append(ex.origin)
        if slow[svc]:
            ex = slow_ex[svc]
            c.reasons.append(f"most own time in {slow[svc]} slow trace(s) beyond the baseline, e.g. {ex.why}")
            c.evidence.append(ex.origin)
        if o is not None:
            lag = (o.at_ms - earliest) / 1000 if earliest is not None else 0.0
            first = "first to leave its baseline" if lag <= 0 else f"left its baseline {lag:.0f} s after the first"
            c.reasons.append(f"{first}: {o.series} reached {o.value:g} (baseline {o.baseline:g}, threshold {o.threshold:g})")
            c.evidence.append(o.origin)
        cands.append(c)
    cands.sort(key=lambda c: (-c.score, c.onset_ms if c.onset_ms is not None else 2**62, c.service))
    for i, c in enumerate(cands, start=1):
        c.rank = i
    chains: Counter[str] = Counter()
    for f in evidence.failing + evidence.slow:
        if period[0] <= f.t <= period[1] and len(f.path) > 1:
            chains[" <- ".join(f.path)] += 1
    return cands, sorted(chains.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
