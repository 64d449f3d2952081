"""What every signal source shares: the latest samples, their freshness, and the source's status.

A source (Prometheus poller, JSON Lines follower) writes samples into a :class:`SampleStore` from
its own thread, stamped with the engine clock when they arrived; the observed fleet reads the
fresh ones at each engine tick, so the tick never waits on the network. A sample older than the
source's ``stale_after_ms`` no longer counts: the signal is stale.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Iterable

from engine.clock import Clock, WallClock, iso_utc

Key = tuple[str, str, str]  # (kind, entity, signal)


class SampleStore:
    """The latest value of each (kind, entity, signal), with when it arrived. Thread-safe."""

    def __init__(self, stale_after_ms: int) -> None:
        self.stale_after_ms = stale_after_ms
        self._values: dict[Key, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self.signals_seen: set[tuple[str, str]] = set()  # (kind, signal) pairs ever written

    def put(self, kind: str, entity: str, signal: str, value: float, at_ms: int) -> None:
        with self._lock:
            self._values[(kind, entity, signal)] = (value, at_ms)
            self.signals_seen.add((kind, signal))

    def put_many(self, samples: Iterable[tuple[str, str, str, float]], at_ms: int) -> int:
        n = 0
        with self._lock:
            for kind, entity, signal, value in samples:
                self._values[(kind, entity, signal)] = (value, at_ms)
                self.signals_seen.add((kind, signal))
                n += 1
        return n

    def fresh(self, now_ms: int) -> dict[Key, float]:
        """Every value that arrived within ``stale_after_ms`` of ``now_ms``."""
        limit = now_ms - self.stale_after_ms
        with self._lock:
            return {k: v for k, (v, at) in self._values.items() if at >= limit}

    def age_ms(self, key: Key, now_ms: int) -> int | None:
        with self._lock:
            got = self._values.get(key)
        return None if got is None else now_ms - got[1]


def clean_value(v: float) -> float | None:
    """A sample value as the engine takes it: NaN means no value; infinities are capped (a
    histogram quantile in the +Inf bucket is "very large", not "unknown")."""
    if math.isnan(v):
        return None
    if math.isinf(v):
        return math.copysign(1e12, v)
    return v


class SignalSource:
    """Base of the sources. Subclasses fill ``store`` from a thread started by :meth:`start`."""

    kind = "source"

    def __init__(self, target: str, stale_after_ms: int) -> None:
        self.target = target
        self.store = SampleStore(stale_after_ms)
        self.clock: Clock = WallClock()
        self.engine: Any = None
        self.known: dict[str, set[str]] = {}
        self.attempted = False  # at least one read/poll finished (until then nothing is "stale", only "waiting")
        self.last_ok_ms: int | None = None
        self.last_error: str | None = None
        self.unknown_entities: dict[str, set[str]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ wiring
    def bind(self, engine: Any) -> None:
        """Attach to the engine that reads this source (its clock, its fleet's entity names)."""
        self.engine = engine
        self.clock = engine.clock
        f = engine.fleet
        self.known = {"service": set(f.services), "queue": set(f.queues), "circuit": set(f.breakers), "region": set(f.regions)}

    def provided(self) -> set[tuple[str, str]]:
        """The (kind, signal) pairs this source delivers (a stale one is missing, not unprovided)."""
        return set(self.store.signals_seen)

    def note_unknown(self, kind: str, name: str) -> None:
        with self._lock:
            seen = self.unknown_entities.setdefault(kind, set())
            if name in seen or len(seen) >= 200:
                return
            seen.add(name)
        eng = self.engine
        if eng is not None:
            eng.notice("source.unknown_entity", f"{self.kind}: {kind} {name!r} is not in the fleet model; its samples are ignored (add a rename to the mapping)", source=self.kind, entity_kind=kind, entity=name)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SignalSource":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_guarded, name=f"ggen-source-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run_guarded(self) -> None:
        try:
            self.run()
        except Exception as exc:  # a source problem must show, never kill the engine
            self.last_error = f"source stopped: {type(exc).__name__}: {exc}"
            if self.engine is not None:
                self.engine.notice("source.error", f"{self.kind}: {self.last_error}", source=self.kind)

    def run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """What the console shows about this source."""
        return {
            "source": self.kind,
            "target": self.target,
            "attempted": self.attempted,
            "last_ok_at": iso_utc(self.last_ok_ms) if self.last_ok_ms is not None else None,
            "last_error": self.last_error,
            "stale_after_ms": self.store.stale_after_ms,
            "unknown_entities": {k: sorted(v) for k, v in self.unknown_entities.items() if v},
        }
