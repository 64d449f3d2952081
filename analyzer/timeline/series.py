"""Metric series and log-rate series of a window: baselines, onsets (where a series leaves its
baseline), threshold crossings and the recovery criteria of a runbook, evaluated on the samples."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from statistics import median
from typing import Iterable

import orjson
import polars as pl

from analyzer.timeline.model import Onset, Origin
from analyzer.timeline.settings import AnomalySettings, TimelineSettings
from engine.detect.rules import compare


@dataclass
class Series:
    """One metric series (metric, emitting service, labels), in time order."""

    metric: str
    service: str | None
    labels: dict[str, str]
    owner: str | None  # the service this series describes
    t: list[int] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    display: tuple[str, ...] = ()  # the labels that name the series (all when none of them is present)

    @property
    def name(self) -> str:
        """``metric{label=value}`` with the identifying labels, or ``metric@service``."""
        keep = [(k, v) for k, v in sorted(self.labels.items()) if k in self.display] or sorted(self.labels.items())
        lab = ",".join(f"{k}={v}" for k, v in keep)
        return f"{self.metric}{{{lab}}}" if lab else f"{self.metric}@{self.service or '?'}"

    def origin(self, i: int) -> Origin:
        return Origin("metric", self.files[i], self.lines[i])

    def index_at(self, t_ms: int) -> int | None:
        """Index of the last sample at or before ``t_ms`` (None before the first)."""
        i = bisect.bisect_right(self.t, t_ms) - 1
        return i if i >= 0 else None

    def value_at(self, t_ms: int, grace_ms: int = 0) -> float | None:
        """The value in force at ``t_ms`` (the last sample before it; the first sample if it
        comes within ``grace_ms`` after)."""
        i = self.index_at(t_ms)
        if i is None:
            if self.t and self.t[0] - t_ms <= grace_ms:
                return self.v[0]
            return None
        return self.v[i]


def build_series(metrics: pl.DataFrame, settings: TimelineSettings) -> list[Series]:
    """Group the window's metric samples into series (rows arrive in time order)."""
    if metrics.height == 0:
        return []
    out: dict[tuple[str, str | None, str], Series] = {}
    owners = settings.services.label_owner
    for t, service, metric, value, labels, file, line in metrics.iter_rows():
        key = (metric, service, labels or "")
        s = out.get(key)
        if s is None:
            try:
                lab = orjson.loads(labels) if labels else {}
            except orjson.JSONDecodeError:
                lab = {}
            lab = {str(k): str(v) for k, v in lab.items()} if isinstance(lab, dict) else {}
            owner = lab.get(owners[metric]) if metric in owners else service
            s = out[key] = Series(metric, service, lab, settings.alias(owner), display=tuple(settings.services.display_labels))
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        s.t.append(int(t))
        s.v.append(float(value))
        s.files.append(file)
        s.lines.append(int(line))
    return sorted(out.values(), key=lambda s: s.name)


def sample_interval(series: Iterable[Series]) -> int | None:
    """The typical sampling interval (median step) of the longest series."""
    best = max(series, key=lambda s: len(s.t), default=None)
    if best is None or len(best.t) < 2:
        return None
    steps = [b - a for a, b in zip(best.t, best.t[1:]) if b > a]
    return int(median(steps)) if steps else None


def tidy(v: float) -> float:
    """A figure rounded for reading: 1 decimal from 10 up, 3 below."""
    return round(v, 1) if abs(v) >= 10 else round(v, 3)


def _mad(values: list[float], med: float) -> float:
    return median(abs(x - med) for x in values) if values else 0.0


def metric_onset(s: Series, baseline_end: int, floor: float, st: AnomalySettings, until_ms: int | None = None) -> Onset | None:
    """Where a health series first rises past its baseline for ``consecutive`` samples in a row
    (or once by ``spike_factor`` times the margin): None when it never does."""
    base = [v for t, v in zip(s.t, s.v) if t < baseline_end]
    if len(base) < 3:
        return None
    med = median(base)
    margin = max(st.mad_factor * 1.4826 * _mad(base, med), st.relative_pct / 100 * abs(med), floor)
    run = 0
    start = None
    for i, (t, v) in enumerate(zip(s.t, s.v)):
        if t < baseline_end:
            continue
        if until_ms is not None and t > until_ms and run == 0:
            break
        over = v - med
        if over > margin:
            if run == 0:
                start = i
            run += 1
            if run >= st.consecutive or over > st.spike_factor * margin:
                assert start is not None
                return Onset(s.owner, s.name, s.t[start], s.v[start], tidy(med), tidy(med + margin), s.origin(start))
        else:
            run = 0
    return None


def log_onsets(
    buckets: pl.DataFrame, baseline_end: int, data_start: int, data_end: int, st: AnomalySettings, aliases: dict[str, str], until_ms: int | None = None
) -> list[Onset]:
    """Per service (logs that name it differently merged), where its error and warning lines
    first rise above their baseline rate: at least ``log_min_count`` lines and above
    mean + ``log_sigma`` x sqrt(mean) per bucket, for ``consecutive`` buckets in a row."""
    if buckets.height == 0:
        return []
    size = st.log_bucket_s * 1000
    merged = (
        buckets.with_columns(pl.col("service").replace(aliases).alias("service"))
        .sort(["service", "bucket_ms", "first_ms"], nulls_last=True)
        .group_by(["service", "bucket_ms"], maintain_order=True)
        .agg(
            pl.col("bad").sum(),
            pl.col("first_ms").first(),
            pl.col("first_file").first(),
            pl.col("first_line").first(),
        )
    )
    first_bucket = (data_start // size) * size
    last_bucket = (data_end // size) * size
    grid = range(first_bucket, last_bucket + size, size)
    out = []
    for (service,), grp in merged.group_by(["service"], maintain_order=True):
        rows = {int(r["bucket_ms"]): r for r in grp.iter_rows(named=True)}
        base = [rows[b]["bad"] if b in rows else 0 for b in grid if b + size <= baseline_end]
        if len(base) < 3:
            continue
        mean = sum(base) / len(base)
        limit = max(float(st.log_min_count), mean + st.log_sigma * math.sqrt(max(mean, 0.25)))
        run = 0
        start = None
        for b in grid:
            if b + size <= baseline_end:
                continue
            if until_ms is not None and b > until_ms and run == 0:
                break
            n = rows[b]["bad"] if b in rows else 0
            if n >= limit and n > mean:
                if run == 0:
                    start = b
                run += 1
                if run >= st.consecutive or n > st.spike_factor * limit:
                    r = rows[start]  # type: ignore[index]
                    origin = Origin("log", r["first_file"], int(r["first_line"]))
                    svc = str(service)
                    out.append(Onset(svc, f"error/warning lines of {svc} per {st.log_bucket_s} s", int(r["first_ms"]), float(r["bad"]), tidy(mean), tidy(limit), origin))
                    break
            else:
                run = 0
    return out


def first_crossing(s: Series, op: str, threshold: float, sustain_ms: int, after_ms: int | None = None) -> tuple[int, int] | None:
    """``(index where the condition started, index where it had held sustain_ms)`` of the first
    run of samples meeting ``value op threshold`` that lasts ``sustain_ms``."""
    start = None
    for i, (t, v) in enumerate(zip(s.t, s.v)):
        if after_ms is not None and t < after_ms:
            continue
        if compare(v, op, threshold):
            if start is None:
                start = i
            if t - s.t[start] >= sustain_ms:
                return start, i
        else:
            start = None
    return None


@dataclass
class RecoveryFinding:
    """When the runbook's recovery criteria held in the data."""

    first_met_ms: int | None
    recovered_ms: int | None
    held_ms: int | None
    held_full: bool
    criteria: list[str]
    unmapped: list[str]
    origins: list[Origin]
    hold_ms: int = 0  # how long the runbook wants the criteria to hold


def recovery_in_data(criteria: list[tuple[str, Series, str, float]], unmapped: list[str], after_ms: int, hold_ms: int, scales: dict[str, float]) -> RecoveryFinding:
    """Evaluate ``[(signal, series, op, value)]`` at every sample time after ``after_ms``; the
    recovery is the first time from which all hold for ``hold_ms`` (or to the end of the data)."""
    texts = [f"{sig} {op} {val:g}" for sig, _, op, val in criteria]
    if not criteria:
        return RecoveryFinding(None, None, None, False, texts, unmapped, [], hold_ms)
    points = sorted({t for _, s, _, _ in criteria for t in s.t if t >= after_ms})

    def ok(t: int) -> bool:
        for sig, s, op, val in criteria:
            v = s.value_at(t)
            if v is None or not compare(v * scales.get(sig, 1.0), op, val):
                return False
        return True

    flags = [ok(t) for t in points]
    first_met = next((t for t, f in zip(points, flags) if f), None)
    i = 0
    while i < len(points):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(points) and flags[j + 1]:
            j += 1
        held = points[j] - points[i]
        if held >= hold_ms or j == len(points) - 1:
            origins = []
            for _, s, _, _ in criteria:
                k = s.index_at(points[i])
                if k is not None:
                    origins.append(s.origin(k))
            return RecoveryFinding(first_met, points[i], held, held >= hold_ms, texts, unmapped, origins, hold_ms)
        i = j + 1
    return RecoveryFinding(first_met, None, None, False, texts, unmapped, [], hold_ms)
