"""Recent metric history of a live engine, for ``--since 5m`` and ``--aggregation daily``.

The engine keeps only the signals of the current tick. :class:`MetricsHistory` samples every
entity after each tick into fixed-size ring buffers of doubles (full resolution for the last
``recent_s`` seconds) and folds them into per-minute averages and maxima for ``rollup_s`` seconds,
so a day of history for the default fleet costs a few megabytes. It also keeps the error
breakdown by HTTP status and the slow-query log with first and last sighting.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Iterator

from engine.control.catalog import COLUMNS

MINUTE_MS = 60_000


def entity_row(engine: Any, kind: str, name: str) -> tuple[float, ...]:
    """Current values of every column of ``COLUMNS[kind]`` for one entity."""
    f = engine.fleet
    sig = engine.signals(kind, name)
    if kind == "service":
        s = f.services[name]
        extra = {"response_p99_bytes": s.response_bytes_p99, "response_p50_bytes": s.response_bytes_p99 * 0.3}
    elif kind == "queue":
        extra = {"processing_per_min": sig["processing_per_s"] * 60.0, "ingest_per_min": sig["ingest_per_s"] * 60.0}
    elif kind == "region":
        r = f.regions[name]
        offered = sum(s.in_rps + s.edge_failed_rps for s in f.services.values() if s.ingress_rps > 0)
        extra = {"rps": offered * f.dns.weights.get(name, 0.0) / 100.0, "records": float(r.records), "healthy": 1.0 if (r.up and r.last_check_ok) else 0.0}
    else:
        return tuple([sig.get(c, 0.0) for c in COLUMNS[kind]])
    merged = dict(sig)
    merged.update(extra)
    return tuple([merged.get(c, 0.0) for c in COLUMNS[kind]])


class Ring:
    """The last ``capacity`` rows of ``width`` doubles, with their times."""

    def __init__(self, width: int, capacity: int) -> None:
        self.width = width
        self.capacity = capacity
        self.t = array("q", bytes(8 * capacity))
        self.v = array("d", bytes(8 * capacity * width))
        self.n = 0
        self.head = 0  # next slot

    def add(self, t_ms: int, row: tuple[float, ...] | array) -> None:
        i = self.head
        self.t[i] = t_ms
        self.v[i * self.width : (i + 1) * self.width] = row if isinstance(row, array) else array("d", row)
        self.head = (i + 1) % self.capacity
        if self.n < self.capacity:
            self.n += 1

    def rows(self, since_ms: int | None = None) -> Iterator[tuple[int, tuple[float, ...]]]:
        """Rows oldest first (only those at or after ``since_ms``)."""
        start = (self.head - self.n) % self.capacity
        w = self.width
        for k in range(self.n):
            i = (start + k) % self.capacity
            t = self.t[i]
            if since_ms is not None and t < since_ms:
                continue
            yield t, tuple(self.v[i * w : (i + 1) * w])

    @property
    def oldest_ms(self) -> int | None:
        if not self.n:
            return None
        return self.t[(self.head - self.n) % self.capacity]


class _Minute:
    """This minute's rows of one entity, flat in one array of doubles (no object per row, so
    nothing for the garbage collector to walk)."""

    __slots__ = ("start_ms", "width", "values")

    def __init__(self, start_ms: int, width: int) -> None:
        self.start_ms = start_ms
        self.width = width
        self.values = array("d")

    @property
    def count(self) -> int:
        return len(self.values) // self.width if self.width else 0

    def add(self, row: tuple[float, ...]) -> None:
        self.values.extend(row)

    def fold(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(averages, maxima) per column."""
        n, w, v = self.count, self.width, self.values
        cols = [v[i::w] for i in range(w)]
        return tuple(sum(c) / n for c in cols), tuple(max(c) for c in cols)


class CodeSeries:
    """Failed requests of one service by HTTP status, per tick: four parallel arrays (time, code,
    share of requests, requests per second), one entry per code per tick. Old entries are dropped
    in batches. Dicts and tuples per tick, for every service, kept for half an hour, were hundreds
    of thousands of objects that every full garbage collection walked (pauses of tens of ms)."""

    __slots__ = ("t", "code", "share", "rps", "start")

    def __init__(self) -> None:
        self.t = array("q")
        self.code = array("i")
        self.share = array("d")
        self.rps = array("d")
        self.start = 0  # entries before it are dropped

    def __len__(self) -> int:
        return len(self.t) - self.start

    def add(self, t_ms: int, breakdown: dict[int, tuple[float, float]]) -> None:
        for code, (share, rps) in breakdown.items():
            self.t.append(t_ms)
            self.code.append(code)
            self.share.append(share)
            self.rps.append(rps)

    def drop_before(self, t_ms: int) -> None:
        t, i, n = self.t, self.start, len(self.t)
        while i < n and t[i] < t_ms:
            i += 1
        self.start = i
        if i > 4096 and i * 2 > n:  # compact once most of the arrays is dropped entries
            for a in (self.t, self.code, self.share, self.rps):
                del a[:i]
            self.start = 0

    def since(self, t_ms: int) -> list[tuple[int, dict[int, tuple[float, float]]]]:
        """Ticks at or after ``t_ms`` with failures: (time, {code: (share, rps)})."""
        out: list[tuple[int, dict[int, tuple[float, float]]]] = []
        t, code, share, rps = self.t, self.code, self.share, self.rps
        for i in range(self.start, len(t)):
            ti = t[i]
            if ti < t_ms:
                continue
            if not out or out[-1][0] != ti:
                out.append((ti, {}))
            out[-1][1][code[i]] = (share[i], rps[i])
        return out


@dataclass
class SlowQuerySighting:
    query_id: str
    table: str
    plan: str
    missing_index: str
    caller: str
    database: str
    first_seen_ms: int
    last_seen_ms: int
    mean_ms: float
    worst_mean_ms: float
    calls_per_min: float


class MetricsHistory:
    """Per-entity samples of a running engine (call :meth:`record` after ticks, under its lock)."""

    def __init__(self, recent_s: int = 1800, rollup_s: int = 86_400, tick_ms: int = 1000) -> None:
        self.recent_cap = max(10, recent_s * 1000 // max(1, tick_ms))
        self.rollup_cap = max(10, rollup_s * 1000 // MINUTE_MS)
        self.recent: dict[tuple[str, str], Ring] = {}
        self.avg: dict[tuple[str, str], Ring] = {}
        self.max: dict[tuple[str, str], Ring] = {}
        self._minute: dict[tuple[str, str], _Minute] = {}
        # service -> per tick, {status: (share of requests, requests per second)}
        self.codes: dict[str, CodeSeries] = {}
        self.slow_queries: dict[str, SlowQuerySighting] = {}
        self.last_ms: int | None = None
        self.first_ms: int | None = None

    # ------------------------------------------------------------------ recording
    def record(self, engine: Any) -> None:
        """Sample every entity at the engine's current tick (once per tick at most)."""
        now = engine.now_ms
        if self.last_ms is not None and now <= self.last_ms:
            return
        self.last_ms = now
        if self.first_ms is None:
            self.first_ms = now
        f = engine.fleet
        for kind, names in (("service", f.services), ("queue", f.queues), ("circuit", f.breakers), ("region", f.regions)):
            width = len(COLUMNS[kind])
            for name in names:
                key = (kind, name)
                row = entity_row(engine, kind, name)
                ring = self.recent.get(key)
                if ring is None:
                    ring = self.recent[key] = Ring(width, self.recent_cap)
                    self.avg[key] = Ring(width, self.rollup_cap)
                    self.max[key] = Ring(width, self.rollup_cap)
                ring.add(now, row)
                self._fold(key, now, row)
        keep_after = now - self.recent_cap * engine.tick_ms
        for name, s in f.services.items():
            bd = f.error_breakdown(s) if (s.err5 or s.err4 or s.throttled_rps or not s.up) else None
            series = self.codes.get(name)
            if series is None:
                series = self.codes[name] = CodeSeries()
            if bd:
                series.add(now, {c: (v, v * s.in_rps) for c, v in bd.items()})
            series.drop_before(keep_after)
        from engine.mitigate.actuator import slow_queries

        for q in slow_queries(f):
            seen = self.slow_queries.get(q.query_id)
            db = next((e.dep.name for e in f.services[q.caller].deps if e.dep.kind == "database"), "database") if q.caller in f.services else "database"
            if seen is None:
                self.slow_queries[q.query_id] = SlowQuerySighting(q.query_id, q.table, q.plan, q.missing_index, q.caller, db, now, now, q.mean_ms, q.mean_ms, q.calls_per_min)
            else:
                seen.last_seen_ms = now
                seen.mean_ms = q.mean_ms
                seen.worst_mean_ms = max(seen.worst_mean_ms, q.mean_ms)
                seen.calls_per_min = q.calls_per_min

    def _fold(self, key: tuple[str, str], now: int, row: tuple[float, ...]) -> None:
        """Keep this minute's rows; when a new minute starts, store the last one's average and peak."""
        start = now - now % MINUTE_MS
        m = self._minute.get(key)
        if m is not None and m.start_ms != start:
            if m.count:
                avg, peak = m.fold()
                self.avg[key].add(m.start_ms, avg)
                self.max[key].add(m.start_ms, peak)
            m = None
        if m is None:
            m = self._minute[key] = _Minute(start, len(row))
        m.add(row)

    # ------------------------------------------------------------------ reading
    def window(self, kind: str, name: str, since_ms: int) -> list[tuple[int, tuple[float, ...]]]:
        """Full-resolution samples since ``since_ms`` (empty when none are kept)."""
        ring = self.recent.get((kind, name))
        return list(ring.rows(since_ms)) if ring else []

    def minutes(self, kind: str, name: str, since_ms: int) -> tuple[list[tuple[int, tuple[float, ...]]], list[tuple[int, tuple[float, ...]]]]:
        """Per-minute averages and maxima since ``since_ms`` (the minute in progress included)."""
        key = (kind, name)
        avg = list(self.avg[key].rows(since_ms)) if key in self.avg else []
        mx = list(self.max[key].rows(since_ms)) if key in self.max else []
        m = self._minute.get(key)
        if m is not None and m.count and m.start_ms >= since_ms:
            a, p = m.fold()
            avg.append((m.start_ms, a))
            mx.append((m.start_ms, p))
        return avg, mx

    def covered_since(self, kind: str, name: str, since_ms: int, use_minutes: bool) -> int | None:
        """The oldest time the answer for ``since_ms`` can really cover."""
        key = (kind, name)
        ring = (self.avg if use_minutes else self.recent).get(key)
        oldest = ring.oldest_ms if ring is not None else None
        if use_minutes:
            m = self._minute.get(key)
            if oldest is None and m is not None:
                oldest = m.start_ms
        if oldest is None:
            return None
        return max(oldest, since_ms)

    def codes_since(self, service: str, since_ms: int) -> list[tuple[int, dict[int, tuple[float, float]]]]:
        series = self.codes.get(service)
        return series.since(since_ms) if series is not None else []
