"""The Prometheus source: one instant PromQL query per mapped signal, on an interval.

Queries run on the source's own thread (a few in parallel), never on the engine's tick. Each
result series is mapped to a fleet entity through the mapping's entity labels and renames; a
series naming an entity the fleet model does not have is reported once and ignored. A query that
fails (connection refused, timeout, HTTP or PromQL error) or returns nothing for an entity leaves
that entity's signal without a fresh sample: it goes stale after ``stale_after_ms``.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.clock import iso_utc
from engine.sources.base import SignalSource, clean_value
from engine.sources.mapping import PrometheusMapping, SignalQuery


class QueryError(RuntimeError):
    """A query that gave no usable answer; the message says why (for the console and notices)."""


def instant_query(opener: urllib.request.OpenerDirector, base_url: str, promql: str, timeout_s: float, headers: dict[str, str]) -> tuple[str, Any]:
    """Run one instant query; returns (resultType, result). Raises QueryError."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    req = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            raw = resp.read(32 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            body = json.loads(exc.read(64 * 1024) or b"{}")
            detail = f": {body.get('errorType', '')} {body.get('error', '')}".rstrip()
        except (ValueError, OSError):
            pass
        raise QueryError(f"HTTP {exc.code}{detail}"[:300]) from None
    except urllib.error.URLError as exc:
        raise QueryError(f"cannot reach {base_url}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise QueryError(f"cannot reach {base_url}: {exc}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise QueryError("the answer is not JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error", "unknown error") if isinstance(body, dict) else "unexpected answer"
        raise QueryError(f"query failed: {err}"[:300])
    data = body.get("data") or {}
    return str(data.get("resultType", "")), data.get("result")


class PrometheusSource(SignalSource):
    """Polls a Prometheus server's HTTP API with the mapping's queries."""

    kind = "prometheus"

    def __init__(
        self,
        url: str,
        mapping: PrometheusMapping,
        *,
        interval_ms: int = 5_000,
        timeout_ms: int = 2_000,
        stale_after_ms: int | None = None,
        window: str | None = None,
        max_parallel: int = 4,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(url, stale_after_ms if stale_after_ms is not None else int(interval_ms * 2.5))
        self.url = url
        self.mapping = mapping
        self.interval_ms = interval_ms
        self.timeout_s = timeout_ms / 1000.0
        self.window = window or mapping.mapping.window
        self.max_parallel = max_parallel
        self.headers = dict(headers or {})
        # Environment proxies are not used: the URL says where Prometheus is.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.queries: list[tuple[SignalQuery, str]] = [(q, q.query.replace("{window}", self.window)) for q in mapping.signals]
        self.polls = 0
        self.query_errors: dict[str, str] = {}  # "kind.signal" -> last error (cleared when it answers)
        self.empty: set[str] = set()  # "kind.signal" whose last answer held no series
        self.last_poll_ms: int | None = None
        self.last_poll_duration_ms: int | None = None

    def provided(self) -> set[tuple[str, str]]:
        return self.mapping.provided()

    # ------------------------------------------------------------------ polling
    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="ggen-promql") as pool:
            while not self._stop.is_set():
                started = time.monotonic()
                self.poll_once(pool)
                wait = self.interval_ms / 1000.0 - (time.monotonic() - started)
                if wait > 0:
                    self._stop.wait(wait)

    def poll_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Run every query once and store what came back. Returns the number of samples stored."""
        t0 = time.monotonic()
        if pool is None:
            results = [self._one(q, text) for q, text in self.queries]
        else:
            results = list(pool.map(lambda qt: self._one(*qt), self.queries))
        now = self.clock.now_ms()
        stored = 0
        errors: dict[str, str] = {}
        empty: set[str] = set()
        for (q, _), (samples, err) in zip(self.queries, results):
            name = f"{q.kind}.{q.signal}"
            if err is not None:
                errors[name] = err
                continue
            if not samples:
                empty.add(name)
            stored += self.store.put_many(samples, now)
        self.query_errors = errors
        self.empty = empty
        self.polls += 1
        self.last_poll_ms = now
        self.last_poll_duration_ms = int((time.monotonic() - t0) * 1000)
        if len(errors) < len(self.queries):
            self.last_ok_ms = now
        if errors:
            first = next(iter(errors.items()))
            self.last_error = f"{len(errors)} of {len(self.queries)} queries failed; {first[0]}: {first[1]}"
        else:
            self.last_error = None
        self.attempted = True
        return stored

    def _one(self, q: SignalQuery, text: str) -> tuple[list[tuple[str, str, str, float]], str | None]:
        try:
            rtype, result = instant_query(self._opener, self.url, text, self.timeout_s, self.headers)
        except QueryError as exc:
            return [], str(exc)
        except Exception as exc:  # never let one query take the poller down
            return [], f"{type(exc).__name__}: {exc}"
        try:
            return self._samples(q, rtype, result), None
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            return [], f"unexpected result shape: {exc}"[:300]

    def _samples(self, q: SignalQuery, rtype: str, result: Any) -> list[tuple[str, str, str, float]]:
        entities = self.known.get(q.kind, set())
        if rtype == "scalar":
            series = [({}, result)]
        elif rtype == "vector":
            series = [(item.get("metric") or {}, item["value"]) for item in result]
        else:
            raise ValueError(f"resultType {rtype!r} (an instant query must return a vector or a scalar)")
        out: list[tuple[str, str, str, float]] = []
        if q.scope == "all":
            for _, value in series[:1]:
                v = clean_value(float(value[1]))
                if v is not None:
                    out.extend((q.kind, name, q.signal, v * q.scale) for name in sorted(entities))
            return out
        labels_of = self.mapping.labels
        for metric, value in series:
            raw = labels_of.entity(q.kind, {str(k): str(v) for k, v in metric.items()})
            if raw is None:
                continue
            name = self.mapping.rename.apply(q.kind, raw)
            if entities and name not in entities:
                self.note_unknown(q.kind, name)
                continue
            v = clean_value(float(value[1]))
            if v is not None:
                out.append((q.kind, name, q.signal, v * q.scale))
        return out

    def status(self) -> dict[str, Any]:
        st = super().status()
        st.update(
            interval_ms=self.interval_ms,
            window=self.window,
            queries=len(self.queries),
            polls=self.polls,
            last_poll_at=iso_utc(self.last_poll_ms) if self.last_poll_ms is not None else None,
            last_poll_duration_ms=self.last_poll_duration_ms,
            failing_queries=dict(sorted(self.query_errors.items())),
            empty_queries=sorted(self.empty),
        )
        return st
