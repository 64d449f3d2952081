"""A fleet that is watched, not simulated: each tick applies the latest observed values.

:class:`ObservedFleet` has the shape of :class:`~engine.fleet.model.Fleet` (the services, tenant
queues, circuit breakers and regions of a :class:`~engine.policy.models.FleetSpec`, with the same
signal methods), so the engine's detection, runbooks, severity rules, escalation and receipts run
on it unchanged. Its :meth:`step` does not simulate anything: it copies the freshest samples of
its sources into the model's objects and signal tables.

A signal with no fresh sample is stale, and a signal no source provides is unknown: both read as
NaN. Every comparison with NaN is false, so no detection rule fires on it and no recovery
criterion passes on it; the ``healthy`` signals read 0 (not known to be healthy), so the fleet is
never taken for healthy because data is missing. ``stale``
says which signals are stale per entity, and the engine is told (``source.stale`` and
``source.fresh`` notices) when a source goes stale and when it comes back.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from engine.fleet.model import Change, Fleet, TickRecord
from engine.mitigate.breaker import CLOSED, OPEN, STATE_NAMES, Transition
from engine.policy.models import FleetSpec, MitigationPolicy
from engine.sources.base import SignalSource

NAN = float("nan")

# The keys of each kind's signal table: the same as the simulator's.
SIGNAL_KEYS: dict[str, tuple[str, ...]] = {
    "service": (
        "rps", "p50_ms", "p99_ms", "p99_9_ms", "error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min",
        "cpu_pct", "memory_pct", "replicas", "healthy", "open_breakers", "throttled_rps",
    ),
    "queue": ("depth", "lag_p99_s", "lag_p50_s", "ingest_per_s", "processing_per_s", "net_drain_per_s", "concurrency", "concurrency_used_pct"),
    "circuit": ("state", "error_pct", "p99_ms", "healthy"),
    "region": ("consecutive_failed_checks", "consecutive_passed_checks", "healthy", "standby_traffic_pct", "traffic_pct", "replication_lag_ms", "edge_error_pct"),
}


def _finite(v: float) -> bool:
    return v == v and not math.isinf(v)


class ObservedFleet(Fleet):
    """The fleet model filled from signal sources instead of a simulation."""

    simulated = False

    def __init__(self, spec: FleetSpec, mitigation: MitigationPolicy, sources: list[SignalSource], *, seed: int = 1) -> None:
        super().__init__(spec, mitigation, seed=seed)
        self.sources = list(sources)
        self.notify: Callable[..., None] | None = None  # engine.notice, set when bound
        self.stale: dict[str, set[str]] = {}  # "kind:entity" -> stale signal names
        self.stale_since_ms: int | None = None
        self._stale_announced = False
        self._ever_fresh = False
        self._state_provided = False
        self._provided: set[tuple[str, str]] = set()  # (kind, signal) some source provides
        self._sig: dict[str, dict[str, dict[str, float]]] = {
            "service": {n: dict.fromkeys(SIGNAL_KEYS["service"], NAN) for n in self.services},
            "queue": {n: dict.fromkeys(SIGNAL_KEYS["queue"], NAN) for n in self.queues},
            "circuit": {n: dict.fromkeys(SIGNAL_KEYS["circuit"], NAN) for n in self.breakers},
            "region": {n: dict.fromkeys(SIGNAL_KEYS["region"], NAN) for n in self.regions},
        }
        self._known_rev: dict[str, tuple[int | None, int | None]] = {n: (None, None) for n in self.services}
        for s in self.services.values():
            for attr in ("in_rps", "served_rps", "p50", "p99", "p999", "err5", "err4", "own_err5", "cpu_pct", "memory_pct", "throttled_rps"):
                setattr(s, attr, NAN)
            s.healthy = False
        for q in self.queues.values():
            q.depth = q.oldest_age_s = q.ingest = q.processed = q.attempted = NAN
        self.edge_error_pct = NAN
        self.total_requests = NAN  # not observed: receipts say null, not 0
        for r in self.regions.values():
            r.replication_lag_ms = NAN

    # ------------------------------------------------------------------ the simulator's verbs
    def inject(self, kind: str, target: str, now_ms: int, params: dict[str, Any] | None = None, duration_s: float | None = None):
        raise ValueError(f"fault injection needs the simulator; this engine watches {self.describe()} (inject into the real system, or into `ggen fleet serve` with POST /faults)")

    def clear_fault(self, fault_id: str, now_ms: int):
        raise ValueError(f"no faults here: this engine watches {self.describe()}")

    def describe(self) -> str:
        return ", ".join(f"{s.kind} {s.target}" for s in self.sources) or "no source"

    # ------------------------------------------------------------------ signals
    def getter(self, kind: str, signal: str):
        table = self._sig
        if kind == "queue":
            return lambda q: table["queue"][q.account_id][signal]
        return lambda obj: table[kind][obj.name][signal]

    def service_signals(self, s) -> dict[str, float]:
        return dict(self._sig["service"][s.name])

    def queue_signals(self, q) -> dict[str, float]:
        return dict(self._sig["queue"][q.account_id])

    def circuit_signals(self, b) -> dict[str, float]:
        return dict(self._sig["circuit"][b.name])

    def region_signals(self, r) -> dict[str, float]:
        return dict(self._sig["region"][r.name])

    def known(self, kind: str, name: str, signal: str) -> bool:
        """Whether ``signal`` of an entity has a fresh observed value now (False when stale, or
        when no source provides it): what is not known is shown as unknown, never as healthy."""
        return (kind, signal) in self._provided and signal not in self.stale.get(f"{kind}:{name}", ())

    def source_status(self) -> list[dict[str, Any]]:
        """Each source's state, and what is stale (for the console and ``ggen watch``). ``provides``
        lists the ``kind.signal`` names the source gives (what it does not give is unknown)."""
        out = []
        for src in self.sources:
            st = src.status()
            st["provides"] = sorted(f"{k}.{sg}" for k, sg in src.provided())
            st["stale_signals"] = sum(len(v) for v in self.stale.values())
            st["stale_since_ms"] = self.stale_since_ms
            out.append(st)
        return out

    # ------------------------------------------------------------------ the tick
    def step(self, now_ms: int) -> TickRecord:
        """Apply the freshest observed values (no simulation)."""
        self.now_ms = now_ms
        rec = TickRecord(now_ms)
        self.tick = rec
        fresh: dict[tuple[str, str, str], float] = {}
        provided: set[tuple[str, str]] = set()
        for src in self.sources:
            fresh.update(src.store.fresh(now_ms))
            provided |= src.provided()
        stale: dict[str, set[str]] = {}
        self._state_provided = ("circuit", "state") in provided

        def val(kind: str, name: str, signal: str) -> float | None:
            """The value, NaN when provided but stale, None when nobody provides it."""
            if (kind, signal) not in provided:
                return None
            v = fresh.get((kind, name, signal))
            if v is None:
                stale.setdefault(f"{kind}:{name}", set()).add(signal)
                return NAN
            return v

        self._step_circuits(rec, val)
        self._step_services(now_ms, val)
        self._step_queues(val)
        self._step_regions(rec, val)
        self.stale = stale
        self._provided = provided
        self._announce(now_ms, provided, stale)
        return rec

    def _step_circuits(self, rec: TickRecord, val) -> None:
        for name, b in self.breakers.items():
            t = self._sig["circuit"][name]
            state = val("circuit", name, "state")
            err = val("circuit", name, "error_pct")
            p99 = val("circuit", name, "p99_ms")
            healthy = val("circuit", name, "healthy")
            t["state"] = NAN if state is None else state
            t["error_pct"] = NAN if err is None else err
            t["p99_ms"] = NAN if p99 is None else p99
            if healthy is None or not _finite(healthy):
                healthy = 0.0 if err is None or not _finite(err) else (1.0 if err < 50.0 else 0.0)
            t["healthy"] = healthy  # 0 when unknown: never "healthy" on missing data
            if state is not None and _finite(state):
                new = int(round(state))
                if new in STATE_NAMES and new != b.state:
                    tr = Transition(rec.now_ms, b.state, new, "observed")
                    b.state = new
                    if new == OPEN:
                        b.opened_at_ms = rec.now_ms
                        b.open_count += 1
                        b.last_trip = {"window_error_rate_bp": int(err * 100) if err is not None and _finite(err) else 0}
                    rec.transitions.append((b, tr))
                    self._log(rec.now_ms, "ERROR" if new == OPEN else "INFO", b.caller, f"circuit {b.name} {STATE_NAMES[new]} (observed)", dependency=b.dependency)

    def _step_services(self, now_ms: int, val) -> None:
        sig_c = self._sig["circuit"]
        for name, s in self.services.items():
            t = self._sig["service"][name]
            g = {k: val("service", name, k) for k in ("rps", "p50_ms", "p99_ms", "p99_9_ms", "error_pct", "error_5xx_pct", "error_4xx_pct", "errors_per_min", "cpu_pct", "memory_pct", "replicas", "healthy", "up", "throttled_rps", "revision", "config_version")}
            e5, e4, ep = g["error_5xx_pct"], g["error_4xx_pct"], g["error_pct"]
            if ep is None:
                ep = NAN if e5 is None and e4 is None else (e5 or 0.0) + (e4 or 0.0)
            err5 = (e5 / 100.0) if e5 is not None else ep / 100.0
            err4 = (e4 / 100.0) if e4 is not None else (0.0 if e5 is None else ep / 100.0 - err5)
            rps = NAN if g["rps"] is None else g["rps"]
            up = g["up"]
            is_up = not (up is not None and _finite(up) and up < 0.5)
            healthy = g["healthy"]
            if healthy is None or not _finite(healthy):
                healthy = 0.0 if not _finite(err5) else (1.0 if err5 < 0.5 and is_up else 0.0)
            epm = g["errors_per_min"]
            if epm is None:
                epm = rps * ep / 100.0 * 60.0
            tracked = [sig_c[e.breaker.name]["state"] for e in s.deps] if self._state_provided else []
            open_breakers = float(sum(1 for v in tracked if v != CLOSED)) if all(_finite(v) for v in tracked) else NAN
            thr = NAN if g["throttled_rps"] is None else g["throttled_rps"]
            t.update(
                rps=rps,
                p50_ms=NAN if g["p50_ms"] is None else g["p50_ms"],
                p99_ms=NAN if g["p99_ms"] is None else g["p99_ms"],
                p99_9_ms=NAN if g["p99_9_ms"] is None else g["p99_9_ms"],
                error_pct=ep,
                error_5xx_pct=100.0 * err5,
                error_4xx_pct=100.0 * err4,
                errors_per_min=epm,
                cpu_pct=NAN if g["cpu_pct"] is None else g["cpu_pct"],
                memory_pct=NAN if g["memory_pct"] is None else g["memory_pct"],
                # A count, not a health signal: the last one seen (or the configured one) stands.
                replicas=g["replicas"] if g["replicas"] is not None and _finite(g["replicas"]) else float(s.replicas),
                healthy=healthy,
                open_breakers=open_breakers,
                throttled_rps=thr,
            )
            # The model's attributes, for the parts of the engine that read them directly.
            s.in_rps = rps
            s.served_rps = rps - thr if _finite(thr) else rps
            s.throttled_rps = thr
            s.p50, s.p99, s.p999 = t["p50_ms"], t["p99_ms"], t["p99_9_ms"]
            s.err5, s.err4, s.own_err5 = err5, err4, err5
            s.cpu_pct, s.memory_pct = t["cpu_pct"], t["memory_pct"]
            s.healthy = healthy == 1.0
            s.up = is_up
            s.crashed = not is_up
            if g["replicas"] is not None and _finite(g["replicas"]):
                s.replicas = int(round(g["replicas"]))
            self._track_changes(now_ms, s, g["revision"], g["config_version"])

    def _track_changes(self, now_ms: int, s, revision: float | None, config_version: float | None) -> None:
        """A new revision or config version seen is recorded as a deploy or config change (a lower
        one as a rollback or revert), so the runbooks' change-window conditions can see it."""
        known_rev, known_cfg = self._known_rev[s.name]
        if revision is not None and _finite(revision):
            rev = int(round(revision))
            if known_rev is not None and rev != known_rev:
                what = f"rollback to revision {rev} (observed)" if rev < known_rev else f"deploy revision {rev} (observed)"
                s.changes.append(Change(now_ms, "deploy", known_rev, rev, what, actor="observed"))
                self._log(now_ms, "INFO", s.name, what)
            s.revision = rev
            known_rev = rev
        if config_version is not None and _finite(config_version):
            ver = int(round(config_version))
            if known_cfg is not None and ver != known_cfg:
                what = f"revert to config v{ver} (observed)" if ver < known_cfg else f"config v{known_cfg} -> v{ver} (observed)"
                s.changes.append(Change(now_ms, "config", known_cfg, ver, what, actor="observed"))
                self._log(now_ms, "INFO", s.name, what)
            s.config_version = ver
            known_cfg = ver
        self._known_rev[s.name] = (known_rev, known_cfg)

    def _step_queues(self, val) -> None:
        for name, q in self.queues.items():
            t = self._sig["queue"][name]
            g = {k: val("queue", name, k) for k in SIGNAL_KEYS["queue"] if k != "net_drain_per_s"}
            depth = NAN if g["depth"] is None else g["depth"]
            lag99 = NAN if g["lag_p99_s"] is None else g["lag_p99_s"]
            lag50 = lag99 / 2.0 if g["lag_p50_s"] is None else g["lag_p50_s"]
            ingest = NAN if g["ingest_per_s"] is None else g["ingest_per_s"]
            proc = NAN if g["processing_per_s"] is None else g["processing_per_s"]
            conc = NAN if g["concurrency"] is None else g["concurrency"]
            used = g["concurrency_used_pct"]
            if used is None:
                cap = conc * q.per_worker
                used = 100.0 * min(1.0, proc / cap) if _finite(cap) and cap > 0 and _finite(proc) else NAN
            t.update(depth=depth, lag_p99_s=lag99, lag_p50_s=lag50, ingest_per_s=ingest, processing_per_s=proc, net_drain_per_s=proc - ingest, concurrency=conc, concurrency_used_pct=used)
            q.depth, q.oldest_age_s, q.ingest, q.processed, q.attempted = depth, lag99, ingest, proc, proc
            if _finite(conc):
                q.concurrency = int(round(conc))

    def _step_regions(self, rec: TickRecord, val) -> None:
        weights_seen = False
        for name, r in self.regions.items():
            w = val("region", name, "traffic_pct")
            if w is not None and _finite(w):
                self.dns.weights[name] = w
                weights_seen = True
        if weights_seen:
            self.serving = max(self.dns.weights, key=lambda n: self.dns.weights[n])
        edge = NAN
        for name, r in self.regions.items():
            t = self._sig["region"][name]
            cf = val("region", name, "consecutive_failed_checks")
            cp = val("region", name, "consecutive_passed_checks")
            healthy = val("region", name, "healthy")
            up = val("region", name, "up")
            w = val("region", name, "traffic_pct")
            lag = val("region", name, "replication_lag_ms")
            e = val("region", name, "edge_error_pct")
            if healthy is None or not _finite(healthy):
                healthy = 0.0 if cf is None or not _finite(cf) else (1.0 if cf < 0.5 else 0.0)
            sw = val("region", self.standby, "traffic_pct")
            t.update(
                consecutive_failed_checks=NAN if cf is None else cf,
                consecutive_passed_checks=NAN if cp is None else cp,
                healthy=healthy,
                standby_traffic_pct=NAN if sw is None else sw,
                traffic_pct=NAN if w is None else w,
                replication_lag_ms=NAN if lag is None else lag,
                edge_error_pct=NAN if e is None else e,
            )
            if up is not None and _finite(up):
                r.up = up >= 0.5
            checked = False
            if cf is not None and _finite(cf) and int(round(cf)) != r.consecutive_failed:
                r.consecutive_failed = int(round(cf))
                checked = True
            if cp is not None and _finite(cp) and int(round(cp)) != r.consecutive_passed:
                r.consecutive_passed = int(round(cp))
                checked = True
            r.last_check_ok = healthy >= 0.5
            if checked:
                r.last_check_ms = rec.now_ms
                rec.health_checks.append((name, r.last_check_ok))
            r.replication_lag_ms = t["replication_lag_ms"]
            if e is not None and edge != edge:
                edge = t["edge_error_pct"]
        self.edge_error_pct = edge

    # ------------------------------------------------------------------ notices
    def _announce(self, now_ms: int, provided: set[tuple[str, str]], stale: dict[str, set[str]]) -> None:
        if not any(src.attempted for src in self.sources):
            return  # nothing read yet
        n = sum(len(v) for v in stale.values())
        total = self._expected(provided)
        names = ", ".join(f"{s.kind} {s.target}" for s in self.sources)
        if n and not self._stale_announced:
            self._stale_announced = True
            self.stale_since_ms = now_ms
            reason = "; ".join(s.last_error for s in self.sources if s.last_error) or "no recent samples"
            state = "stale" if self._ever_fresh else "without a value yet"
            self._say("source.stale", f"{names}: {n} of {total} signals {state} ({reason}); they count as unknown, never as healthy", stale_signals=n, entities=sorted(stale)[:50], reason=reason)
        elif not n and total and (self._stale_announced or not self._ever_fresh):
            since = self.stale_since_ms
            self._say("source.fresh", f"{names}: all {total} signals fresh" + (f" again after {(now_ms - since) // 1000} s" if self._ever_fresh and since is not None else ""), stale_for_ms=now_ms - since if since is not None else 0)
            self._stale_announced = False
            self.stale_since_ms = None
        if not n and total:
            self._ever_fresh = True

    def _expected(self, provided: set[tuple[str, str]]) -> int:
        sizes = {"service": len(self.services), "queue": len(self.queues), "circuit": len(self.breakers), "region": len(self.regions)}
        return sum(sizes[k] for k, _ in provided)

    def _say(self, kind: str, text: str, **data: Any) -> None:
        if self.notify is not None:
            self.notify(kind, text, **data)
