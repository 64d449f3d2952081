"""The engine: detect, classify, mitigate, verify recovery, escalate, on any clock.

Each tick the engine steps the fleet, reads its signals, evaluates every runbook's detection rules
(sustain windows, consecutive counts, baselines), opens or updates incidents (deduplicated per type
and entity, with hysteresis), runs the runbook steps through the safety governor and the actuator,
checks the recovery criteria over their hold window, and walks the escalation ladder. Everything it
establishes about an incident is an :class:`~engine.events.IncidentEvent`, handed to listeners (the
receipt ledger, the console) in order.
"""
from __future__ import annotations

import math
import random
import threading
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from engine import events as ev
from engine.clock import Clock, VirtualClock, iso_utc
from engine.detect.rules import OPS, Baseline, Sustained, compare, compile_rules
from engine.escalation import HandleRoster, LadderRun, Notification, Outbox, Roster, ladder_for
from engine.events import EventListener, IncidentEvent
from engine.fleet.faults import FAULT_KINDS, Fault
from engine.fleet.model import Fleet
from engine.incident import (
    DETECTED,
    ESCALATED,
    MITIGATING,
    RECOVERING,
    RESOLVED,
    SEV_RANK,
    Incident,
    StepState,
    lower_severity,
    more_severe,
    raise_severity,
)
from engine.mitigate.actuator import Action, ActionResult, Actuator, SimActuator, UnknownAction
from engine.mitigate.breaker import CLOSED, HALF_OPEN, OPEN, STATE_NAMES
from engine.mitigate.governor import SafetyGovernor
from engine.mitigate.scaling import next_concurrency
from engine.policy.bundle import Policy, load_policy
from engine.runbook import holds

if TYPE_CHECKING:
    from engine.policy.models import Runbook

ENTITY_ORDER = ("region_failover", "circuit_breaker_opened", "error_rate_spike", "latency_spike", "queue_backlog_overflow")


class SeededIds:
    """UUIDs from a seeded generator: drills and tests get the same ids for the same seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids-{seed}")

    def __call__(self) -> str:
        return "urn:uuid:" + str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


def random_id() -> str:
    return "urn:uuid:" + str(uuid.uuid4())


def _ints(d: dict[str, float]) -> dict[str, int]:
    return {k: int(round(v)) for k, v in d.items() if math.isfinite(v)}  # unknown (NaN) signals are left out


def _int(v: float) -> int | None:
    """An evidence number; None when the signal is unknown (an observed fleet's stale signal)."""
    return int(v) if math.isfinite(v) else None


class Engine:
    """The live engine over one fleet. Thread-safe: ``lock`` guards every public call."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        clock: Clock | None = None,
        seed: int = 1,
        fleet: Fleet | None = None,
        actuator: Actuator | None = None,
        outbox: Outbox | None = None,
        roster: Roster | None = None,
        ids: Callable[[], str] | None = None,
        dry_run: bool | None = None,
        kill_switch: bool | None = None,
        history_len: int = 600,
        training: bool = False,
    ) -> None:
        self.policy = policy or load_policy()
        self.clock: Clock = clock or VirtualClock()
        self.seed = seed
        self.fleet = fleet or Fleet(self.policy.fleet, self.policy.mitigation, seed=seed)
        self.actuator: Actuator = actuator or SimActuator(self.fleet, self.policy.mitigation)
        self.sim_actuator = self.actuator if isinstance(self.actuator, SimActuator) else SimActuator(self.fleet, self.policy.mitigation)
        self.outbox = outbox or Outbox()
        self.roster: Roster = roster or HandleRoster()
        self.ids = ids or SeededIds(seed)
        self.governor = SafetyGovernor(self.policy.mitigation.governor)
        if dry_run is not None:
            self.governor.dry_run = dry_run
        if kill_switch is not None:
            self.governor.kill_switch = kill_switch
        # Training mode (engine/training): detection, classification, recovery checks and the
        # escalation ladder run as usual, but the engine takes no action of its own (no runbook
        # steps, no pre-incident scaling, no automatic escalation): a trainee does all of that.
        # Unlike the kill switch it does not escalate open incidents (nor does the kill switch
        # while training), and detection pages the primary (the trainee) at once.
        self.training = training
        self.tick_ms = self.policy.fleet.fleet.tick_ms
        self.now_ms = self.clock.now_ms()
        self.started_ms = self.now_ms
        self.lock = threading.RLock()
        self.listeners: list[EventListener] = []
        self.notice_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.incidents: dict[str, Incident] = {}
        self.open_by_key: dict[tuple[str, str], str] = {}
        # incident type -> entity name -> [the rules' trackers, the entity's key in open_by_key,
        # when the rules last all stopped holding (ms, None while one holds)]
        self._trackers: dict[str, dict[str, list[Any]]] = {}
        self._baselines: dict[tuple[str, str, str], Baseline] = {}
        self._resolved_keys: set[tuple[str, str]] = set()
        self._pre_scaler: dict[str, Sustained] = {}
        self._ladders: dict[str, LadderRun] = {}
        self._advisory: dict[tuple[str, str], Sustained] = {}
        self.advisories: dict[tuple[str, str], dict[str, Any]] = {}
        self.scratch: dict[Any, Any] = {}
        self.external_alerts: dict[str, str] = {}  # alert fingerprint -> incident id (open_external_incident)
        self.notices: deque[dict[str, Any]] = deque(maxlen=2000)
        self.history: dict[str, deque[tuple[int, float, float, float]]] = {
            s: deque(maxlen=history_len) for s in self.fleet.services
        }
        self.queue_history: dict[str, deque[tuple[int, float]]] = {q: deque(maxlen=history_len) for q in self.fleet.queues}
        self.ticks = 0
        self.crashed: BaseException | None = None
        self._deps_cache: dict[str, set[str]] = {s: self.fleet.dependencies_of(s) for s in self.fleet.services}
        self._sig_cache: dict[tuple[str, str], dict[str, float]] = {}
        self._objs_this_tick: dict[str, list[tuple[str, Any]]] = {}
        self._runbooks_in_order: list[Runbook] = [self.policy.runbooks[t] for t in ENTITY_ORDER]
        # Baselines are kept for the signals a rule compares with a baseline, and for service P99
        # (the latency runbook's spike factor).
        wanted = {("service", "p99_ms")}
        for rb in self._runbooks_in_order:
            for r in rb.detection:
                if r.baseline_below is not None:
                    wanted.add((rb.runbook.entity, r.signal))
        self._baseline_getters = [(k, sig, self.fleet.getter(k, sig)) for k, sig in sorted(wanted)]
        self._compiled = [
            (
                rb,
                rb.runbook.entity,
                [r.sustain_s * 1000 for r in rb.detection],
                compile_rules(
                    rb.runbook.entity,
                    [(idx, r.signal, r.op, r.threshold, r.baseline_below, r.sustain_s * 1000, self.fleet.getter(rb.runbook.entity, r.signal)) for idx, r in enumerate(rb.detection)],
                ),
            )
            for rb in self._runbooks_in_order
        ]
        self._open_entities: set[str] = set()
        self._matrix = [(rule, *rule.signal.partition(".")[::2]) for rule in self.policy.severity.matrix]
        self._matrix = [(rule, kind, self.fleet.getter(kind, sig)) for rule, kind, sig in self._matrix if kind in ("service", "region")]

    # ================================================================== listeners and ids
    def subscribe(self, listener: EventListener) -> None:
        """Receive every incident event, in order, as it is written."""
        self.listeners.append(listener)

    def on_notice(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Receive engine-level notices (fault injected, kill switch, advisories)."""
        self.notice_listeners.append(listener)

    def _notice(self, kind: str, text: str, **data: Any) -> None:
        n = {"at_ms": self.now_ms, "kind": kind, "text": text, **data}
        self.notices.append(n)
        for fn in list(self.notice_listeners):
            fn(n)

    def _emit(
        self,
        inc: Incident,
        kind: str,
        summary: str,
        data: dict[str, Any] | None = None,
        *,
        source_signal: str,
        actor: str | None = None,
        observed_at_ms: int | None = None,
    ) -> IncidentEvent:
        e = IncidentEvent(
            incident_id=inc.id,
            seq=len(inc.events),
            kind=kind,
            observed_at_ms=self.now_ms if observed_at_ms is None else observed_at_ms,
            recorded_at_ms=self.now_ms,
            incident_type=inc.type,
            severity=inc.severity,
            service=inc.service,
            region=inc.region,
            actor=actor or f"runbook:{inc.runbook_id}@{inc.runbook_version}",
            source_signal=source_signal,
            summary=summary,
            data=_clean(data or {}),
        )
        inc.events.append(e)
        for fn in list(self.listeners):
            fn(e)
        return e

    # ================================================================== running
    def advance_to(self, t_ms: int) -> int:
        """Run every tick up to ``t_ms``. Returns the number of ticks run."""
        n = 0
        while self.now_ms + self.tick_ms <= t_ms:
            self.step()
            n += 1
        return n

    def run_for(self, ms: int) -> None:
        """Virtual time: advance the clock by ``ms`` and run the ticks in between."""
        target = self.now_ms + ms
        if isinstance(self.clock, VirtualClock):
            self.clock.sleep_until(target)
        self.advance_to(target)

    def run_until(self, predicate: Callable[["Engine"], bool], max_ms: int) -> bool:
        """Virtual time: tick until ``predicate(engine)`` holds or ``max_ms`` passes."""
        end = self.now_ms + max_ms
        while self.now_ms < end:
            if isinstance(self.clock, VirtualClock):
                self.clock.sleep_until(self.now_ms + self.tick_ms)
            self.step()
            if predicate(self):
                return True
        return False

    def step(self) -> None:
        """One tick: fleet, detection, runbooks, recovery, escalation."""
        with self.lock:
            self.now_ms += self.tick_ms
            now = self.now_ms
            self.ticks += 1
            rec = self.fleet.step(now)
            self._sig_cache = {}
            self._objs_this_tick = {}
            self._open_entities = {ent for (_, ent) in self.open_by_key}
            self._update_baselines()
            self._pre_incident_scaling()
            self._on_breaker_transitions(rec)
            self._detect()
            self._advisories()
            for inc in list(self.incidents.values()):
                if inc.open:
                    self._adjust_severity(inc)
                    self._run_steps(inc)
                    self._assess(inc)
                    self._check_recovery(inc)
                    self._auto_escalate(inc)
                    self._walk_ladder(inc)
            self._record_history()

    # ================================================================== signals
    def signals(self, kind: str, name: str) -> dict[str, float]:
        """This tick's signals of one entity (cached per tick)."""
        key = (kind, name)
        sig = self._sig_cache.get(key)
        if sig is None:
            f = self.fleet
            if kind == "service":
                sig = f.service_signals(f.services[name])
            elif kind == "queue":
                sig = f.queue_signals(f.queues[name])
            elif kind == "circuit":
                sig = f.circuit_signals(f.breakers[name])
            elif kind == "region":
                sig = f.region_signals(f.regions[name])
            else:
                raise ValueError(f"unknown entity kind {kind!r}")
            self._sig_cache[key] = sig
        return sig

    def entities(self, kind: str) -> list[str]:
        f = self.fleet
        if kind == "service":
            # A third party's health is watched through the breaker on calls to it.
            return [n for n, s in f.services.items() if s.kind != "external"]
        if kind == "queue":
            return list(f.queues)
        if kind == "circuit":
            return list(f.breakers)
        if kind == "region":
            # Only the region traffic is sent to can need a failover.
            return [r for r, w in f.dns.weights.items() if w >= 50.0 or r == f.serving]
        raise ValueError(kind)

    def _update_baselines(self) -> None:
        """Rolling baselines for the signals a rule compares with its baseline, frozen while the
        value is anomalous or an incident is open on the entity."""
        open_entities = self._open_entities
        for kind, sig, get in self._baseline_getters:
            if kind == "region":
                continue
            prefix = kind + ":"
            open_names = {e[len(prefix):] for e in open_entities if e.startswith(prefix)}
            baselines = self._baselines
            objs = self._entity_objs(kind)
            for name, obj in objs:
                key = (kind, name, sig)
                b = baselines.get(key)
                if b is None:
                    b = baselines[key] = Baseline(600.0, self.tick_ms / 1000.0)
                v = get(obj)
                if v != v:
                    continue  # a stale (NaN) observed signal teaches the baseline nothing
                cur = b.value
                if cur is None:
                    b.value = v
                    b.samples = 1
                    continue
                anomalous = (b.samples > 30 and v > cur * 2.0 and v > cur + 1.0) or name in open_names
                if not anomalous:
                    b.value = cur + b.alpha * (v - cur)
                b.samples += 1

    def baseline(self, kind: str, name: str, signal: str) -> float | None:
        b = self._baselines.get((kind, name, signal))
        return None if b is None else b.value

    def _entity_objs(self, kind: str) -> list[tuple[str, Any]]:
        """(name, object) of every entity of a kind. Services, queues and circuits are listed once
        a tick (baselines, detection and advisories each walk them); regions are read afresh, as
        the traffic's region can move within a tick."""
        objs = self._objs_this_tick.get(kind)
        if objs is not None:
            return objs
        f = self.fleet
        if kind == "service":
            objs = [(n, s) for n, s in f.services.items() if s.kind != "external"]
        elif kind == "queue":
            objs = list(f.queues.items())
        elif kind == "circuit":
            objs = list(f.breakers.items())
        else:
            return [(n, f.regions[n]) for n in self.entities("region")]
        self._objs_this_tick[kind] = objs
        return objs

    # ================================================================== pre-incident automation
    def _pre_incident_scaling(self) -> None:
        """The auto-scaler of 11-automated-mitigation: acts at depth > 500 for 30 s, before incidents."""
        sp = self.policy.mitigation.scaler
        if self.governor.kill_switch or self.training or not getattr(self.fleet, "simulated", True):
            return  # an observed fleet is scaled by its own systems, not by writing to the model
        for name, q in self.fleet.queues.items():
            tr = self._pre_scaler.get(name)
            if tr is None:
                tr = self._pre_scaler[name] = Sustained(sp.pre_incident_sustain_s * 1000)
            if not tr.update(q.depth > sp.pre_incident_depth, self.now_ms):
                continue
            if (self.now_ms - self.started_ms) // 1000 % sp.evaluate_every_s:
                continue
            if ("queue_backlog_overflow", f"queue:{name}") in self.open_by_key:
                continue  # the incident's runbook owns scaling now
            if q.last_scaled_ms is not None and self.now_ms - q.last_scaled_ms < sp.cooldown_s * 1000:
                continue
            d = next_concurrency(q.concurrency, q.depth, sp, q.limit)
            if not d.changes:
                continue
            if self.governor.dry_run:
                self._notice("scaling.planned", f"dry-run: would scale {name} concurrency {q.concurrency} -> {d.proposed}", tenant=name)
                q.last_scaled_ms = self.now_ms
                continue
            before = q.concurrency
            q.concurrency = d.proposed
            q.last_scaled_ms = self.now_ms
            self.fleet.log(self.now_ms, "INFO", q.consumer, f"scaling_applied: concurrency {before} -> {d.proposed}", account_id=name, queue_depth=int(q.depth))
            self._notice("scaling.applied", f"auto-scaler: {name} concurrency {before} -> {d.proposed} (depth {int(q.depth)})", tenant=name, **{"from": before, "to": d.proposed})

    # ================================================================== detection
    def _region_degraded(self) -> bool:
        f = self.fleet
        if any(i.type == "region_failover" and i.open for i in self.incidents.values()):
            return True
        serving = [r for r, w in f.dns.weights.items() if w > 0]
        return any(f.regions[r].consecutive_failed >= 1 or not f.regions[r].up for r in serving)

    def _detect(self) -> None:
        region_degraded = self._region_degraded()
        now = self.now_ms
        hyst = self.policy.severity.detection.hysteresis_s * 1000
        baselines = self._baselines
        resolved = self._resolved_keys
        for rb, kind, windows, check in self._compiled:
            t = rb.incident_type
            trackers = self._trackers.get(t)
            if trackers is None:
                trackers = self._trackers[t] = {}
            holding: dict[str, list[tuple[int, int]]] = {}
            any_hold: set[str] = set()
            for name, obj in self._entity_objs(kind):
                entry = trackers.get(name)
                if entry is None:
                    entry = trackers[name] = [[Sustained(w) for w in windows], (t, f"{kind}:{name}"), None]
                hold_any, fired = check(obj, name, entry[0], now, baselines)
                if hold_any:
                    any_hold.add(name)
                    entry[2] = None
                else:
                    since = entry[2]  # when every rule stopped holding: a resolved key re-arms after the hysteresis
                    if since is None:
                        entry[2] = now
                    elif now - since >= hyst and entry[1] in resolved:
                        resolved.discard(entry[1])
                if fired:
                    holding[name] = fired
            for name, fired in holding.items():
                self._on_detection(rb, kind, name, fired, any_hold, region_degraded)

    def _severity_for(self, rb: Runbook, idx: int, kind: str, name: str) -> str:
        r = rb.detection[idx]
        if r.severity_if_critical and self._critical(kind, name):
            return r.severity_if_critical
        return r.severity

    def _critical(self, kind: str, name: str) -> bool:
        f = self.fleet
        if kind == "circuit":
            return f.services[f.breakers[name].dependency].critical
        if kind == "service":
            return f.services[name].critical
        return True

    def _service_of(self, kind: str, name: str) -> str:
        f = self.fleet
        if kind == "service":
            return name
        if kind == "queue":
            return f.queues[name].consumer
        if kind == "circuit":
            return f.breakers[name].dependency
        return "edge"

    def _on_detection(self, rb: Runbook, kind: str, name: str, fired: list[tuple[int, int]], any_hold: set[str], region_degraded: bool) -> None:
        t = rb.incident_type
        key = (t, f"{kind}:{name}")
        best_idx, _ = min(fired, key=lambda x: SEV_RANK[self._severity_for(rb, x[0], kind, name)])
        sev = self._severity_for(rb, best_idx, kind, name)
        first_anomaly = min(since for _, since in fired)
        if kind == "region":
            # A consecutive-check rule holds from its first failed check, not from the last one.
            r = self.fleet.regions[name]
            first_anomaly = min(first_anomaly, self.now_ms - max(0, r.consecutive_failed - 1) * self.fleet.health_interval_ms)
        existing = self.open_by_key.get(key)
        if existing is not None:
            inc = self.incidents[existing]
            if SEV_RANK[sev] < SEV_RANK[inc.detection_severity]:
                inc.detection_severity = sev
                self._set_severity(inc, more_severe(inc.severity, sev), f"detection tier reached: {self._rule_text(rb, best_idx)}", "detection")
            return
        service = self._service_of(kind, name)
        # Correlation: a symptom of an open incident deeper in the graph joins that incident.
        if kind in ("service", "circuit"):
            if kind == "service" and region_degraded:
                return
            deps = self._deps_cache.get(service, set())
            if kind == "service" and any(d in any_hold for d in deps):
                return  # a dependency shows the same condition: the incident belongs to it
            if kind == "circuit":
                dep = self.fleet.services[service]
                if dep.up and any(not e.dep.up or e.dep.err5 >= 0.5 or e.breaker.state != CLOSED for e in dep.deps):
                    return  # the dependency only relays a deeper failure; that one gets the incident
            for other in self.incidents.values():
                if not other.open or other.entity_kind not in ("service", "circuit"):
                    continue
                # Deeper in the graph, or the same service under another incident type.
                if other.service in deps or other.service == service:
                    if service not in other.affected and service != other.service:
                        other.affected.add(service)
                        self._notice("incident.correlated", f"{t} on {service} joined {other.type} on {other.service}", incident_id=other.id)
                    return
        # Hysteresis: after a resolution the condition must clear for a while before the key re-arms.
        if key in self._resolved_keys:
            return
        self._open_incident(rb, kind, name, service, sev, best_idx, first_anomaly)

    def _rule_text(self, rb: Runbook, idx: int) -> str:
        r = rb.detection[idx]
        sustain = f" for {r.sustain_s} s" if r.sustain_s else ""
        base = f" with baseline < {r.baseline_below:g}" if r.baseline_below is not None else ""
        return f"{r.signal} {r.op} {r.threshold:g}{sustain}{base}"

    def _open_incident(self, rb: Runbook, kind: str, name: str, service: str, sev: str, idx: int, first_anomaly: int) -> Incident:
        f = self.fleet
        region = name if kind == "region" else f.serving
        inc = Incident(
            id=self.ids(),
            type=rb.incident_type,
            entity_kind=kind,
            entity=name,
            service=service,
            region=region,
            runbook_id=rb.runbook.id,
            runbook_version=rb.runbook.version,
            severity=sev,
            max_severity=sev,
            detection_severity=sev,
            detected_at_ms=self.now_ms,
            first_anomaly_ms=first_anomaly,
            rule=self._rule_text(rb, idx),
            critical=self._critical(kind, name),
            high_value=kind == "queue" and f.queues[name].high_value,
        )
        inc.title = self._title(inc)
        inc.steps = [StepState(s.id, s.title) for s in rb.steps]
        self.incidents[inc.id] = inc
        self.open_by_key[(inc.type, f"{kind}:{name}")] = inc.id
        self._resolved_keys.discard((inc.type, f"{kind}:{name}"))
        data = self._detection_evidence(inc, rb, idx)
        self._emit(inc, ev.DETECTED, f"{rb.runbook.title} detected on {inc.entity}: {inc.rule}", data, source_signal=f"{kind}.{rb.detection[idx].signal}", actor="engine")
        f.log(self.now_ms, "ERROR", service, f"ALERT {inc.type} {inc.severity}: {inc.rule}", incident_id=inc.id)
        ladder = self.policy.escalation.ladders[inc.severity]
        starting = "training mode, no automation runs" if self.training else f"automated runbook {inc.runbook_id} starting"
        self._notify(inc, ladder.chat_channel, "channel", ladder.chat_channel, f"{inc.severity} {inc.title}: detected, {starting}", kind="info")
        level = self.policy.severity.levels[inc.severity]
        if self.training:
            # The trainee is the on-call: paged at detection; escalating is their decision.
            inc.notes["paged_at_ms"] = self.now_ms
            self._notify(inc, ladder.steps[0].channel if ladder.steps else "pager", "primary", self.roster.who("primary", self.now_ms), f"{inc.severity} {inc.title}: detected; no automation runs in training: the incident is yours", kind="page")
        elif not level.auto_mitigation or inc.severity in self.policy.escalation.auto.page_without_automation:
            self._escalate(inc, f"{inc.severity} is not auto-mitigated: a human handles it", actor="engine")
        elif self.governor.kill_switch:
            self._escalate(inc, "automation is stopped (kill switch): a human must follow the runbook", actor="engine")
        return inc

    def _title(self, inc: Incident) -> str:
        names = {
            "queue_backlog_overflow": f"Queue backlog for {inc.entity}",
            "circuit_breaker_opened": f"Circuit breaker {inc.entity} opened",
            "latency_spike": f"Latency spike on {inc.service}",
            "error_rate_spike": f"Error rate spike on {inc.service}",
            "region_failover": f"Region {inc.entity} unavailable",
        }
        return names[inc.type]

    def _detection_evidence(self, inc: Incident, rb: Runbook, idx: int) -> dict[str, Any]:
        rule = rb.detection[idx]
        sig = self.signals(inc.entity_kind, inc.entity)
        stale = sorted(k for k, v in sig.items() if v != v)  # an observed fleet's unknown signals: recorded as null
        f = self.fleet
        base: dict[str, Any] = {
            "rule": inc.rule,
            "signal": rule.signal,
            "value_milli": int(round(sig[rule.signal] * 1000)),
            "threshold_milli": int(round(rule.threshold * 1000)),
            "sustain_s": rule.sustain_s,
            "first_anomaly_at": iso_utc(inc.first_anomaly_ms),
            "time_to_detect_ms": inc.time_to_detect_ms,
            "entity": inc.entity,
        }
        if inc.type == "queue_backlog_overflow":
            q = f.queues[inc.entity]
            proc = sig["processing_per_s"] * 60
            base.update(
                account_id=q.account_id,
                detection_method="automated_alert",
                status="detected",
                metrics={
                    "queue_depth": _int(sig["depth"]),
                    "queue_depth_threshold": int(rb.detection[0].threshold),
                    "message_lag_seconds": _int(sig["lag_p99_s"]),
                    "message_lag_threshold_seconds": int(rb.detection[1].threshold) if len(rb.detection) > 1 else 0,
                    "processing_rate_msgs_per_min": _int(proc),
                    "ingest_rate_msgs_per_min": _int(sig["ingest_per_s"] * 60),
                    "processing_backlog_minutes": _int(sig["depth"] / proc) if proc > 0.1 else -1,
                },
                current_state={
                    "governor_concurrency": q.concurrency,
                    "max_concurrency": q.limit,
                    "consumer_lag_vs_quota_pct": int(100 * q.concurrency / max(1, q.quota)),
                },
            )
        elif inc.type == "circuit_breaker_opened":
            b = f.breakers[inc.entity]
            trip = dict(b.last_trip)
            base.update(
                affected_service=b.dependency,
                caller=b.caller,
                circuit_state="OPEN",
                trigger_reason=self.scratch.get(("trip_reason", b.name), "error_rate_threshold_exceeded"),
                status="open",
                critical_dependency=inc.critical,
                metrics_at_trigger={
                    "error_rate_bp": trip.get("window_error_rate_bp", _int(sig["error_pct"] * 100)),
                    "error_threshold_bp": int(b.policy.rate_pct * 100),
                    "consecutive_errors": trip.get("consecutive_errors", 0),
                    "error_threshold_count": b.policy.count,
                    "latency_p99_ms": _int(sig["p99_ms"]),
                    "latency_threshold_ms": b.policy.latency_p99_ms or b.policy.timeout_ms,
                },
            )
        elif inc.type == "latency_spike":
            s = f.services[inc.service]
            bl = self.baseline("service", inc.service, "p99_ms") or (rb.baseline.p99_ms if rb.baseline else 200.0)
            ratio = (s.p99 / bl) if bl else 0.0
            base.update(
                detection_method="automated_threshold",
                status="detected",
                spike_factor_milli=_int(ratio * 1000),
                suspected_bottleneck=self._suspected_bottleneck(inc),
                baseline_metrics={"p50_ms": _int(bl / 2.6), "p99_ms": _int(bl), "p99_9_ms": _int(bl * 2)},
                spike_metrics={"p50_ms": _int(s.p50), "p99_ms": _int(s.p99), "p99_9_ms": _int(s.p999)},
                cpu_pct=_int(s.cpu_pct),
                memory_pct=_int(s.memory_pct),
            )
        elif inc.type == "error_rate_spike":
            s = f.services[inc.service]
            bl = self.baseline("service", inc.service, "error_pct") or 0.0
            last_deploy = next((c for c in reversed(s.changes) if c.kind == "deploy"), None)
            total = s.err5 + s.err4
            base.update(
                detection_method="automated_threshold",
                status="detected",
                metrics_at_trigger={
                    "error_rate_bp": _int(sig["error_pct"] * 100),
                    "error_threshold_bp": int(rule.threshold * 100) if rule.signal == "error_pct" else 500,
                    "baseline_error_rate_bp": _int(bl * 100),
                    "errors_per_minute": _int(sig["errors_per_min"]),
                    "threshold_errors_per_minute": 100,
                    "total_requests": _int(self.fleet.total_requests),
                },
                error_distribution={
                    "5xx_server_errors_bp": _int(10000 * s.err5 / total) if total else 0,
                    "4xx_client_errors_bp": _int(10000 * s.err4 / total) if total else 0,
                },
                recent_changes={
                    "last_deployment": f"revision {last_deploy.after} at {iso_utc(last_deploy.at_ms)}" if last_deploy else "none",
                    "config_changes": any(c.kind == "config" for c in s.changes),
                },
            )
        elif inc.type == "region_failover":
            r = f.regions[inc.entity]
            base.update(
                detection_method="automated_health_check_failures",
                status="failover_initiated",
                primary_region=inc.entity,
                standby_region=f.standby if inc.entity == f.primary else f.primary,
                health_check_failures=r.consecutive_failed,
                time_to_detect_seconds=inc.time_to_detect_ms // 1000,
                failover_trigger_time=iso_utc(self.now_ms),
            )
        if stale:
            base["unknown_signals"] = stale
        return base

    def _suspected_bottleneck(self, inc: Incident) -> str:
        from engine.mitigate.actuator import slow_queries

        s = self.fleet.services.get(inc.service)
        if s is None:
            return "unknown"
        if any(q.caller == s.name for q in slow_queries(self.fleet)):
            return "database_slow_queries"
        if s.memory_pct > self.policy.mitigation.replicas.memory_pct_trigger:
            return "memory_gc_pressure"
        if s.cpu_pct > self.policy.mitigation.replicas.cpu_pct_trigger:
            return "cpu_saturation"
        return "dependency_latency"

    def _advisories(self) -> None:
        """Severity-matrix signals no runbook owns (CPU, memory, health checks): shown, not incidents."""
        now = self.now_ms
        for rule, kind, get in self._matrix:
            opf = OPS[rule.op]
            thr = rule.threshold
            for name, obj in self._entity_objs(kind):
                key = (rule.name, name)
                tr = self._advisory.get(key)
                if tr is None:
                    tr = self._advisory[key] = Sustained(rule.sustain_s * 1000)
                if not opf(get(obj), thr):  # Sustained.update, inline: most entities, most ticks
                    tr.since_ms = None
                    if key in self.advisories:
                        del self.advisories[key]
                    continue
                fired = tr.update(True, now)
                if fired:
                    if key not in self.advisories:
                        self.advisories[key] = {"rule": rule.name, "entity": name, "severity": rule.severity, "since_ms": tr.since_ms}
                        self._notice("advisory", f"{rule.severity} advisory: {rule.name} on {name}", rule=rule.name, entity=name)
                elif key in self.advisories:
                    del self.advisories[key]

    # ================================================================== breaker transitions
    def _on_breaker_transitions(self, rec) -> None:
        for b, t in rec.transitions:
            if t.to_state == OPEN:
                self.scratch[("trip_reason", b.name)] = t.reason
            key = ("circuit_breaker_opened", f"circuit:{b.name}")
            inc_id = self.open_by_key.get(key)
            if inc_id is None:
                continue
            inc = self.incidents[inc_id]
            if t.to_state == HALF_OPEN and not inc.recovery_started_emitted:
                inc.recovery_started_emitted = True
                if inc.state not in (ESCALATED,):
                    inc.state = RECOVERING
                self._emit(
                    inc,
                    ev.RECOVERY_STARTED,
                    f"circuit {b.name} HALF_OPEN: probing {b.dependency}",
                    {
                        "affected_service": b.dependency,
                        "circuit_state": "HALF_OPEN",
                        "recovery_reason": "attempting_probe",
                        "probe_interval_seconds": b.policy.probe_interval_s,
                        "success_threshold_for_recovery": b.policy.close_after_successes,
                        "status": "half_open_probing",
                        "documented_type": "circuit_breaker_recovery_attempt",
                    },
                    source_signal="circuit.state",
                    actor="engine",
                )

    # ================================================================== severity
    def _set_severity(self, inc: Incident, sev: str, reason: str, rule: str) -> None:
        if sev == inc.severity:
            return
        before = inc.severity
        inc.severity = sev
        inc.max_severity = more_severe(inc.max_severity, sev)
        self._emit(inc, ev.CLASSIFIED, f"severity {before} -> {sev}: {reason}", {"from": before, "to": sev, "rule": rule, "reason": reason, "max_severity": inc.max_severity}, source_signal="severity_rules", actor="engine")

    def _adjust_severity(self, inc: Incident) -> None:
        applied: set[str] = inc.notes.setdefault("adjusted", set())
        for rule in self.policy.severity.adjust:
            if rule.name in applied:
                continue
            ok = False
            if rule.when == "high_value_account":
                ok = inc.high_value
            elif rule.when == "multiple_tenants_or_services":
                ok = len([a for a in inc.affected if a in self.fleet.queues]) >= 1 or len(inc.affected) >= 3
            elif rule.when == "failover_complete":
                ok = inc.failover_complete and (rule.edge_error_below_pct is None or self.fleet.edge_error_pct < rule.edge_error_below_pct)
            elif rule.when == "non_critical_service":
                ok = inc.entity_kind == "service" and not inc.critical
            if not ok:
                continue
            applied.add(rule.name)
            new = raise_severity(inc.severity) if rule.change > 0 else lower_severity(inc.severity)
            if rule.max_severity and SEV_RANK[new] < SEV_RANK[rule.max_severity]:
                new = rule.max_severity
            if rule.min_severity and SEV_RANK[new] > SEV_RANK[rule.min_severity]:
                new = rule.min_severity
            self._set_severity(inc, new, rule.reason, rule.name)

    # ================================================================== runbook steps
    def _run_steps(self, inc: Incident) -> None:
        if self.governor.kill_switch or self.training or inc.state == RESOLVED:
            return
        if not self.policy.severity.levels[inc.severity].auto_mitigation:
            return
        rb = self.policy.runbooks[inc.type]
        for st, step in zip(inc.steps, rb.steps):
            if st.status in ("failed", "skipped"):
                continue
            if st.status == "done":
                if not step.repeat_every_s or st.last_run_ms is None:
                    continue
                if self.now_ms - st.last_run_ms < step.repeat_every_s * 1000:
                    continue
                if step.while_ and not holds(step.while_, self, inc, step):
                    continue
                if inc.exhausted:
                    continue
            elif step.action == "none" and any(
                p.runs and prev.when != "always" for p, prev in zip(inc.steps, rb.steps) if prev is not step and inc.steps.index(p) < inc.steps.index(st)
            ):
                st.status = "skipped"  # a fallback step: an earlier targeted step already acted
                continue
            elif not holds(step.when, self, inc, step):
                continue
            if self._run_step(inc, st, step):
                return  # one action per incident per tick

    def _target_of(self, inc: Incident, step) -> str:
        if inc.entity_kind == "queue":
            if step.action == "open_breaker":
                q = self.fleet.queues[inc.entity]
                consumer = self.fleet.services[q.consumer]
                bad = [e for e in consumer.deps if e.breaker.state != CLOSED or e.dep.err5 >= 0.5]
                return bad[0].breaker.name if bad else consumer.deps[0].breaker.name
            return inc.entity
        if inc.entity_kind == "circuit":
            b = self.fleet.breakers[inc.entity]
            return b.dependency if step.target == "dependency" else b.caller
        if inc.entity_kind == "region":
            return inc.entity
        if step.action == "create_index":
            from engine.mitigate.actuator import slow_queries

            sq = [q for q in slow_queries(self.fleet) if q.caller == inc.service]
            return "database" if not sq else next(e.dep.name for e in self.fleet.services[inc.service].deps if e.dep.kind == "database")
        if step.action == "open_breaker":
            s = self.fleet.services[inc.service]
            bad = [e for e in s.deps if e.dep.own_err5 >= 0.2]
            return bad[0].breaker.name if bad else inc.service
        return inc.service

    def _run_step(self, inc: Incident, st: StepState, step) -> bool:
        """Run one step. Returns True when it consumed this tick's action."""
        if step.action == "none":
            st.status = "done"
            st.runs += 1
            st.last_run_ms = self.now_ms
            st.detail = step.title
            if step.escalate_after:
                self._escalate(inc, step.title, actor="engine")
            return False
        action = Action(step.action, self._target_of(inc, step), {}, (inc.region,), f"runbook:{inc.runbook_id}@{inc.runbook_version}", inc.id, step.title)
        st.status = "running"
        result = self._act(inc, action, automated=True)
        if result is None:  # refused
            st.status = "failed"
            st.detail = "refused by the safety governor"
            if not inc.escalated:
                self._escalate(inc, f"runbook step {step.id} refused by the safety governor", actor="engine")
            return True
        if result.deferred:
            st.status = "pending" if st.runs == 0 else "done"
            st.detail = result.detail
            return False
        st.runs += 1
        st.last_run_ms = self.now_ms
        st.detail = result.detail
        st.before = dict(result.outcome.get("metrics_before", {}))
        if result.ok:
            st.status = "done"
            if step.escalate_after:
                self._escalate(inc, step.title, actor="engine")
        else:
            st.status = "failed"
            if result.exhausted:
                inc.exhausted = True
                if self.policy.escalation.auto.on_actions_exhausted and not inc.escalated:
                    self._escalate(inc, f"runbook actions exhausted: {result.detail}", actor="engine")
            elif not inc.escalated:
                self._escalate(inc, f"mitigation failed: {result.detail}", actor="engine")
        return True

    def _act(self, inc: Incident | None, action: Action, *, automated: bool) -> ActionResult | None:
        """Run an action through the governor and the actuator, and record it on the incident."""
        now = self.now_ms
        service = self._action_service(action)
        verdict = self.governor.check(now, action.name, automated=automated, incident_id=inc.id if inc else None, service=service, regions=action.regions)
        before = self._metrics_for(inc, action)
        base = {"action": action.name, "target": action.target, "params": _clean(action.params), "reason": action.reason, "metrics_before": before, "timestamp": iso_utc(now)}
        if not verdict.allowed:
            if inc is not None:
                self._emit(inc, ev.MITIGATION_REFUSED, f"{action.name} on {action.target} refused: {verdict.reason}", dict(base, refused_reason=verdict.reason), source_signal="governor", actor=action.actor)
            return None
        if inc is not None and inc.first_action_at_ms is None:
            inc.first_action_at_ms = now
        if verdict.dry_run:
            if inc is not None:
                self._emit(inc, ev.MITIGATION_PLANNED, f"dry-run: would {action.name} on {action.target}", dict(base, status="planned"), source_signal="governor", actor=action.actor)
                if inc.state == DETECTED:
                    inc.state = MITIGATING
            return ActionResult(True, f"dry-run: {action.name} planned, not applied", outcome={"metrics_before": before, "dry_run": True})
        try:
            result = self.actuator.apply(action, now)
        except (UnknownAction, ValueError) as exc:
            result = ActionResult(False, str(exc), exhausted=True)
        except Exception as exc:  # an actuator must never take the engine down
            result = ActionResult(False, f"actuator error: {type(exc).__name__}: {exc}", exhausted=True)
        if result.deferred:
            if inc is not None and inc.first_action_at_ms == now and not any(e.kind in (ev.MITIGATION_APPLIED, ev.MITIGATION_FAILED) for e in inc.events):
                inc.first_action_at_ms = None
            return result
        self.governor.record(now, inc.id if inc else None, service)
        result.outcome.setdefault("metrics_before", before)
        if inc is None:
            return result
        actions = [dict({"action": action.name, "timestamp": iso_utc(now)}, **_clean(result.changes))]
        data = dict(base, actions=actions, status="mitigation_applied" if result.ok else "mitigation_failed", detail=result.detail, outcome=_clean(result.outcome))
        data.update(self._documented_mitigation_fields(inc, action))
        kind = ev.MITIGATION_APPLIED if result.ok else ev.MITIGATION_FAILED
        self._emit(inc, kind, f"{action.name} on {action.target}: {result.detail}", data, source_signal=f"actuator.{type(self.actuator).__name__}", actor=action.actor)
        if result.ok:
            inc.pending_assessments.append((now + self.policy.severity.detection.assess_after_s * 1000, len(inc.events) - 1, action.name, before))
            if inc.state in (DETECTED,):
                inc.state = MITIGATING
            if action.name == "failover_region":
                inc.notes["failover_started_ms"] = now
                self._emit(
                    inc,
                    ev.RECOVERY_STARTED,
                    f"failover in progress: DNS moving to {result.changes.get('to')}",
                    {
                        "status": "in_progress",
                        "documented_type": "region_failover_in_progress",
                        "actions_taken": [
                            {"action": "dns_updated", "from": result.changes.get("from"), "to": result.changes.get("to"), "timestamp": iso_utc(now)},
                            {"action": "standby_region_verified", "status": "healthy", "timestamp": iso_utc(now)},
                        ],
                        "dns_propagation": {"estimated_time_seconds": result.changes.get("estimated_time_seconds", 60), "current_propagation_percent": 0},
                    },
                    source_signal="dns",
                    actor=action.actor,
                )
                inc.recovery_started_emitted = True
        return result

    def _documented_mitigation_fields(self, inc: Incident, action: Action) -> dict[str, Any]:
        return {
            "mitigation_method": {
                "scale_concurrency": "auto_scale",
                "restart_service": "service_restart",
                "rollback_deploy": "deployment_rollback",
                "revert_config": "config_revert",
                "disable_feature_flag": "feature_flag_disable",
                "failover_region": "region_failover",
                "open_breaker": "circuit_breaker",
                "throttle": "throttling",
                "prioritize_requests": "load_shedding",
                "create_index": "query_tuning",
                "scale_replicas": "auto_scale",
            }.get(action.name, action.name),
            "mitigation_type": action.name,
        }

    def _action_service(self, action: Action) -> str | None:
        f = self.fleet
        t = action.target
        if t in f.services:
            return t
        if t in f.queues:
            return f.queues[t].consumer
        if t in f.breakers:
            return f.breakers[t].dependency
        return None

    def _metrics_for(self, inc: Incident | None, action: Action) -> dict[str, int]:
        if inc is not None:
            return _ints(self.signals(inc.entity_kind, inc.entity))
        f = self.fleet
        t = action.target
        if t in f.services:
            return _ints(self.signals("service", t))
        if t in f.queues:
            return _ints(self.signals("queue", t))
        if t in f.breakers:
            return _ints(self.signals("circuit", t))
        if t in f.regions:
            return _ints(self.signals("region", t))
        return {}

    def _assess(self, inc: Incident) -> None:
        if not inc.pending_assessments:
            return
        due = [a for a in inc.pending_assessments if a[0] <= self.now_ms]
        if not due:
            return
        inc.pending_assessments = [a for a in inc.pending_assessments if a[0] > self.now_ms]
        after = _ints(self.signals(inc.entity_kind, inc.entity))
        for _, ev_index, name, before in due:
            eff = self._effectiveness(inc, before, after)
            for st in inc.steps:
                if st.last_run_ms is not None and not st.after and st.status == "done":
                    st.after = after
            self._emit(
                inc,
                ev.MITIGATION_ASSESSED,
                f"{name}: {eff} ({self.policy.severity.detection.assess_after_s} s after)",
                {"action": name, "applied_event_seq": ev_index, "metrics_before": before, "metrics_after": after, "effectiveness": eff},
                source_signal=f"{inc.entity_kind}.signals",
                actor="engine",
            )

    def _effectiveness(self, inc: Incident, before: dict[str, int], after: dict[str, int]) -> str:
        crit = self.policy.runbooks[inc.type].recovery.all
        if all(compare(after.get(c.signal, math.nan), c.op, c.value) for c in crit):
            return "successful"
        main = {"queue": "depth", "service": "p99_ms" if inc.type == "latency_spike" else "error_pct", "circuit": "error_pct", "region": "edge_error_pct"}[inc.entity_kind]
        if after.get(main, 0) < before.get(main, 0):
            return "in_progress"
        return "failed"

    # ================================================================== recovery
    def _check_recovery(self, inc: Incident) -> None:
        if "external" in inc.notes:
            return  # an alert's incident resolves when its alert does (resolve_external_incident)
        rb = self.policy.runbooks[inc.type]
        sig = self.signals(inc.entity_kind, inc.entity)
        if inc.type == "region_failover" and not inc.failover_complete and inc.notes.get("failover_started_ms") and sig["standby_traffic_pct"] >= 100.0:
            inc.failover_complete = True
            inc.notes["failover_complete_ms"] = self.now_ms
        ok = all(compare(sig[c.signal], c.op, c.value) for c in rb.recovery.all)
        if inc.type == "circuit_breaker_opened" and self.fleet.breakers[inc.entity].override_state is not None and self.fleet.breakers[inc.entity].state == CLOSED:
            ok = ok and sig["healthy"] >= 1.0
        if not ok:
            if inc.recovery_window_start_ms is not None:
                inc.recovery_window_start_ms = None
                if inc.state == RECOVERING:
                    inc.state = ESCALATED if inc.escalated else MITIGATING
            return
        if inc.recovery_window_start_ms is None:
            inc.recovery_window_start_ms = self.now_ms
            if inc.state != ESCALATED:
                inc.state = RECOVERING
            if not inc.recovery_started_emitted:
                inc.recovery_started_emitted = True
                self._emit(inc, ev.RECOVERY_STARTED, f"recovery criteria met; holding for {rb.recovery.hold_s} s", {"hold_s": rb.recovery.hold_s, "signals": _ints(sig)}, source_signal=f"{inc.entity_kind}.signals", actor="engine")
            return
        if self.now_ms - inc.recovery_window_start_ms >= rb.recovery.hold_s * 1000:
            self._resolve(inc, rb, sig)

    def _resolve(self, inc: Incident, rb: Runbook, sig: dict[str, float]) -> None:
        inc.recovered_at_ms = inc.recovery_window_start_ms
        inc.resolved_at_ms = self.now_ms
        mttr = inc.mttr_ms or 0
        data: dict[str, Any] = {
            "resolution_status": "resolved",
            "status": "resolved",
            "recovered_at": iso_utc(inc.recovered_at_ms or self.now_ms),
            "resolved_at": iso_utc(self.now_ms),
            "hold_s": rb.recovery.hold_s,
            "mttr_ms": mttr,
            "mttr_target_ms": rb.runbook.mttr_target_s * 1000,
            "met_mttr_target": mttr <= rb.runbook.mttr_target_s * 1000,
            "time_to_resolution_seconds": mttr // 1000,
            "auto_resolved": not inc.escalated,
            "final_metrics": _ints(sig),
            "root_cause": self._root_cause_hint(inc),
        }
        if inc.type == "queue_backlog_overflow":
            q = self.fleet.queues[inc.entity]
            data["scaling_maintained"] = {"from_concurrency": q.baseline_concurrency, "to_concurrency": q.concurrency, "recommendation": "monitor_and_reduce_after_5min"}
        elif inc.type == "circuit_breaker_opened":
            b = self.fleet.breakers[inc.entity]
            data.update(circuit_state="CLOSED", documented_type="circuit_breaker_recovered", time_open_seconds=((b.opened_at_ms and (inc.recovered_at_ms or self.now_ms) - inc.detected_at_ms) or 0) // 1000, recovery_method="service_restart" if any(s.step_id == "restart_dependency" and s.runs for s in inc.steps) else "dependency_recovered")
        elif inc.type == "region_failover":
            started = inc.notes.get("failover_started_ms", inc.detected_at_ms)
            done = inc.notes.get("failover_complete_ms", self.now_ms)
            f = self.fleet
            data.update(
                documented_type="region_failover_complete",
                time_to_failover_seconds=(done - inc.detected_at_ms) // 1000,
                traffic_distribution={f"{r.replace('-', '_')}_percent": int(w) for r, w in f.dns.weights.items()},
                data_replication={
                    "lag_ms": int(sig["replication_lag_ms"]),
                    # Writes stranded on the dead primary are not a conflict until it comes back
                    # having missed writes; verify before failback (`ggen replication verify`).
                    "consistency": "CONSISTENT" if f.replication_conflicts() == 0 else "INCONSISTENT",
                    "stranded_writes": int(sum(r.stranded for r in f.regions.values())),
                },
                error_impact={"duration_seconds": (done - started) // 1000 + (started - inc.first_anomaly_ms) // 1000},
            )
        else:
            data["documented_type"] = f"{inc.type}_resolved"
        self._emit(inc, ev.RECOVERY_VERIFIED, f"resolved: criteria held {rb.recovery.hold_s} s; MTTR {mttr // 1000} s (target {rb.runbook.mttr_target_s} s)", data, source_signal=f"{inc.entity_kind}.signals", actor="engine", observed_at_ms=self.now_ms)
        inc.state = RESOLVED
        key = (inc.type, f"{inc.entity_kind}:{inc.entity}")
        self.open_by_key.pop(key, None)
        self._resolved_keys.add(key)
        # Lift a throttle the runbook put on, once the incident is over.
        if inc.type == "error_rate_spike":
            s = self.fleet.services.get(inc.service)
            if s is not None and s.rate_limit_rps is not None and any(st.step_id == "throttle" and st.runs for st in inc.steps):
                s.rate_limit_rps = None
        ladder = self._ladders.get(inc.id)
        if ladder is not None:
            self._notify(inc, self.policy.escalation.ladders[inc.severity].chat_channel, "channel", self.policy.escalation.ladders[inc.severity].chat_channel, f"RESOLVED {inc.severity} {inc.title} after {mttr // 1000} s", kind="update")

    def _root_cause_hint(self, inc: Incident) -> str:
        """What the engine believes caused it, from the actions that worked (a hint, not a verdict)."""
        worked = [s.step_id for s in inc.steps if s.status == "done" and s.runs]
        hints = {
            "rollback": "bad deploy",
            "config": "bad config change",
            "flag": "feature flag / schema change",
            "index": "slow query missing an index",
            "scale": "CPU saturation",
            "gc": "memory pressure",
            "restart_dependency": "dependency failure cleared by restart",
            "failover": "primary region outage",
            "scale_concurrency": "ingest above processing capacity",
        }
        for w in reversed(worked):
            if w in hints:
                return hints[w]
        return "unknown"

    # ================================================================== escalation
    def _auto_escalate(self, inc: Incident) -> None:
        if inc.escalated or inc.state == RESOLVED or self.training:
            return
        limit = self.policy.escalation.auto.no_recovery_after_first_action_s * 1000
        if inc.first_action_at_ms is not None:
            if self.now_ms - inc.first_action_at_ms >= limit and inc.recovery_window_start_ms is None:
                self._escalate(inc, f"no recovery {limit // 1000} s after the first action", actor="engine")
        elif self.now_ms - inc.detected_at_ms >= limit and inc.recovery_window_start_ms is None:
            self._escalate(inc, f"no runbook step applied within {limit // 1000} s of detection", actor="engine")

    def _escalate(self, inc: Incident, reason: str, *, actor: str) -> None:
        if inc.escalated:
            return
        inc.escalated_at_ms = self.now_ms
        inc.escalation_reason = reason
        if inc.state != RESOLVED:
            inc.state = ESCALATED
        ladder = ladder_for(self.policy.escalation, inc.severity, inc.id, self.now_ms)
        self._ladders[inc.id] = ladder
        steps = [{"offset_s": s.offset_s, "role": s.role, "channel": s.channel, "until": s.until} for s in ladder.steps]
        self._emit(inc, ev.ESCALATED, f"escalated to a human: {reason}", {"reason": reason, "ladder": steps, "status": "escalation_required"}, source_signal="escalation_policy", actor=actor)
        self.fleet.log(self.now_ms, "ERROR", inc.service, f"escalation_required: {reason}", incident_id=inc.id)
        self._walk_ladder(inc)

    def _walk_ladder(self, inc: Incident) -> None:
        ladder = self._ladders.get(inc.id)
        if ladder is None:
            return
        if inc.state == RESOLVED:
            return
        for i, st in ladder.due(self.now_ms, inc.acknowledged):
            who = self.roster.who(st.role, self.now_ms)
            elapsed = (self.now_ms - inc.detected_at_ms) // 1000
            text = f"{inc.severity} {inc.title} ({inc.type}) unresolved for {elapsed // 60} min {elapsed % 60} s: {inc.escalation_reason}"
            self._notify(inc, st.channel, st.role, who, text, kind="info" if st.informational else "page", step=i)

    def _notify(self, inc: Incident, channel: str, role: str, who: str, text: str, *, kind: str = "page", step: int | None = None) -> Notification:
        n = Notification(self.ids(), self.now_ms, channel, role, who, inc.id, inc.severity, text, kind, step)
        self.outbox.put(n)
        self._notice("notification", f"{channel} -> {who}: {text}", incident_id=inc.id, channel=channel, recipient=who, notification_kind=kind)
        return n

    # ================================================================== human actions
    def acknowledge(self, incident_id: str, actor: str) -> Incident:
        """A person takes the incident: stops the ladder's no-ack steps."""
        with self.lock:
            inc = self.get_incident(incident_id)
            if inc.acknowledged:
                return inc
            inc.acknowledged_at_ms = self.now_ms
            inc.acknowledged_by = actor
            ladder = self._ladders.get(inc.id)
            sla = self.policy.severity.levels[inc.severity].ack_within_s * 1000
            paged_at = inc.escalated_at_ms or inc.detected_at_ms
            within = self.now_ms - paged_at <= sla
            if ladder is not None:
                ladder.due(self.now_ms, True)
            self._emit(inc, ev.ACKNOWLEDGED, f"acknowledged by {actor}", {"acknowledged_by": actor, "time_to_ack_ms": self.now_ms - paged_at, "ack_sla_ms": sla, "within_sla": within}, source_signal="operator", actor=f"person:{actor}")
            return inc

    def escalate(self, incident_id: str, actor: str, reason: str = "escalated by a person") -> Incident:
        with self.lock:
            inc = self.get_incident(incident_id)
            if inc.state == RESOLVED:
                raise ValueError(f"incident {inc.id} is already resolved")
            if inc.escalated:
                raise ValueError(f"incident {inc.id} is already escalated")
            self._escalate(inc, reason, actor=f"person:{actor}")
            return inc

    def release_open_incidents(self, reason: str) -> list[IncidentEvent]:
        """The engine is stopping: record on every open incident that nothing watches it any more
        (an ``incident.note`` receipt with ``unwatched``), so the ledger does not show it as
        watched and open for ever. ``ggen incidents list`` marks such incidents unwatched."""
        with self.lock:
            return [
                self._emit(inc, ev.NOTE, f"unwatched: {reason}", {"text": reason, "unwatched": True, "state": inc.state}, source_signal="engine", actor="engine")
                for inc in self.incidents.values()
                if inc.open
            ]

    def note(self, incident_id: str, actor: str, text: str, **data: Any) -> IncidentEvent:
        """A person's note (warroom scribe log, comment), recorded in the incident's log."""
        with self.lock:
            inc = self.get_incident(incident_id)
            return self._emit(inc, ev.NOTE, text, dict(data, text=text), source_signal="operator", actor=f"person:{actor}")

    def manual_action(self, name: str, target: str, *, actor: str, incident_id: str | None = None, params: dict[str, Any] | None = None, reason: str = "") -> ActionResult:
        """A person's mitigation: through the same governor and actuator, recorded with them as actor."""
        with self.lock:
            inc = self.get_incident(incident_id) if incident_id else None
            if inc is not None and inc.state == RESOLVED:
                # Its record is closed (recovery verified); an action now is not part of it.
                return ActionResult(False, f"incident {inc.id} is already resolved; act without --incident-id", outcome={"refused": True})
            regions = (self.fleet.serving,)
            action = Action(name, target, dict(params or {}), regions, f"person:{actor}", inc.id if inc else None, reason or "manual mitigation")
            if inc is None:
                verdict = self.governor.check(self.now_ms, name, automated=False, incident_id=None, service=self._action_service(action), regions=regions)
                if not verdict.allowed:
                    return ActionResult(False, f"refused by the safety governor: {verdict.reason}", outcome={"refused": True})
                before = self._metrics_for(None, action)
                if verdict.dry_run:
                    self._notice("mitigation.planned", f"dry-run: {actor} would {name} on {target}", actor=actor)
                    return ActionResult(True, f"dry-run: {name} planned, not applied", outcome={"dry_run": True, "metrics_before": before})
                try:
                    result = self.actuator.apply(action, self.now_ms)
                except (UnknownAction, ValueError) as exc:
                    return ActionResult(False, str(exc), outcome={"error": True})
                if not result.deferred:
                    self.governor.record(self.now_ms, None, self._action_service(action))
                result.outcome.setdefault("metrics_before", before)
                self._notice("mitigation.manual", f"{actor}: {name} on {target}: {result.detail}", actor=actor, action=name, target=target, ok=result.ok)
                return result
            result = self._act(inc, action, automated=False)
            if result is None:
                return ActionResult(False, "refused by the safety governor: " + (inc.events[-1].data.get("refused_reason", "") if inc.events else ""), outcome={"refused": True})
            return result

    def notice(self, kind: str, text: str, **data: Any) -> None:
        """Post an engine-level notice from outside the engine (delivery, roster problems)."""
        with self.lock:
            self._notice(kind, text, **data)

    def page_next_step(self, incident_id: str, *, after_step: int | None, reason: str, failed_notification_id: str | None = None) -> Notification | None:
        """A notification could not be delivered: announce it (a ``delivery.failed`` notice) and
        page the next role of the incident's ladder now, after ladder step ``after_step`` (None:
        from the first step). Returns the new page, or None when nobody is left to page or the
        incident is resolved."""
        with self.lock:
            inc = self.get_incident(incident_id)
            self._notice("delivery.failed", reason, incident_id=inc.id, notification_id=failed_notification_id)
            if inc.state == RESOLVED:
                return None
            ladder = self._ladders.get(inc.id)
            steps = ladder.steps if ladder is not None else list(self.policy.escalation.ladders[inc.severity].steps)
            failed_role = steps[after_step].role if after_step is not None and 0 <= after_step < len(steps) else None
            for j in range(0 if after_step is None else after_step + 1, len(steps)):
                st = steps[j]
                if st.informational or st.role == failed_role or (st.until == "ack" and inc.acknowledged):
                    continue
                if ladder is not None:
                    ladder.done.add(j)
                who = self.roster.who(st.role, self.now_ms)
                text = f"{inc.severity} {inc.title} ({inc.type}) needs you now: {reason}"
                return self._notify(inc, st.channel, st.role, who, text, kind="page", step=j)
            return None

    def set_kill_switch(self, on: bool, actor: str) -> None:
        with self.lock:
            self.governor.kill_switch = on
            self._notice("kill_switch", f"kill switch {'ON: automation stopped' if on else 'off: automation resumed'} by {actor}", actor=actor, on=on)
            if on and not self.training:
                for inc in self.incidents.values():
                    if inc.open and not inc.escalated:
                        self._escalate(inc, "automation stopped (kill switch): a human must follow the runbook", actor=f"person:{actor}")

    def set_dry_run(self, on: bool, actor: str) -> None:
        with self.lock:
            self.governor.dry_run = on
            self._notice("dry_run", f"dry-run {'on' if on else 'off'} by {actor}", actor=actor, on=on)

    def inject(self, kind: str, target: str | None = None, *, params: dict[str, Any] | None = None, duration_s: float | None = None, actor: str = "chaos") -> Fault:
        """Inject a fault now (chaos menu, drills, `ggen chaos inject`)."""
        with self.lock:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
            target = target or default_target(self.fleet, kind)
            fault = self.fleet.inject(kind, target, self.now_ms, params, duration_s)
            self._notice("fault.injected", f"{actor} injected {kind} on {target}", fault=fault.to_dict(), actor=actor)
            return fault

    # ================================================================== external incidents
    def open_external_incident(
        self,
        incident_type: str,
        entity_kind: str,
        entity: str,
        severity: str,
        *,
        source: str,
        fingerprint: str,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        starts_at_ms: int | None = None,
    ) -> Incident:
        """An incident another system detected (an Alertmanager alert): opened with a detection
        receipt, then run like any other (runbook, governor, ladder). One per ``fingerprint``: a
        repeat changes nothing but a higher severity; an alert on an entity that already has an
        open incident of the type joins it. Raises ValueError for an unknown type, kind, entity or
        severity."""
        with self.lock:
            rb = self.policy.runbooks.get(incident_type)
            if rb is None:
                raise ValueError(f"unknown incident type {incident_type!r}")
            if entity_kind != rb.runbook.entity:
                raise ValueError(f"{incident_type} is about a {rb.runbook.entity}, not a {entity_kind}")
            if entity not in {"service": self.fleet.services, "queue": self.fleet.queues, "circuit": self.fleet.breakers, "region": self.fleet.regions}[entity_kind]:
                raise ValueError(f"{entity_kind} {entity!r} is not in the fleet model")
            if severity not in SEV_RANK:
                raise ValueError(f"unknown severity {severity!r}")
            known = self.incidents.get(self.external_alerts.get(fingerprint, ""))
            if known is not None and known.open:
                if SEV_RANK[severity] < SEV_RANK[known.severity]:
                    self._set_severity(known, severity, f"alert {fingerprint} now says {severity}", f"{source}.severity")
                return known
            alert = {"source": source, "fingerprint": fingerprint, "alertname": (labels or {}).get("alertname", "")}
            key = (incident_type, f"{entity_kind}:{entity}")
            existing = self.incidents.get(self.open_by_key.get(key, ""))
            if existing is not None:
                existing.notes.setdefault("alerts", set()).add(fingerprint)
                self.external_alerts[fingerprint] = existing.id
                self._emit(existing, ev.NOTE, f"alert {alert['alertname'] or fingerprint} from {source} joined this incident", dict(alert, text="alert joined"), source_signal=f"{source}.alert", actor=f"source:{source}")
                return existing
            now = self.now_ms
            started = min(now, starts_at_ms if starts_at_ms is not None else now)
            inc = Incident(
                id=self.ids(), type=incident_type, entity_kind=entity_kind, entity=entity,
                service=self._service_of(entity_kind, entity), region=entity if entity_kind == "region" else self.fleet.serving,
                runbook_id=rb.runbook.id, runbook_version=rb.runbook.version, severity=severity, max_severity=severity,
                detection_severity=severity, detected_at_ms=started, first_anomaly_ms=started,  # detected when the alert started firing: MTTR and age run from there
                rule=f"alert {alert['alertname'] or fingerprint} ({source})", critical=self._critical(entity_kind, entity),
            )
            inc.title = self._title(inc)
            inc.steps = [StepState(st.id, st.title) for st in rb.steps]
            inc.notes["external"] = source
            inc.notes["alerts"] = {fingerprint}
            self.incidents[inc.id] = inc
            self.open_by_key[key] = inc.id
            self.external_alerts[fingerprint] = inc.id
            data = dict(alert, rule=inc.rule, detection_method="external_alert", status="detected", entity=entity,
                        starts_at=iso_utc(started), time_to_detect_ms=inc.time_to_detect_ms,
                        labels={str(k): str(v)[:500] for k, v in list((labels or {}).items())[:50]},
                        annotations={str(k): str(v)[:2000] for k, v in list((annotations or {}).items())[:20]})
            self._emit(inc, ev.DETECTED, f"{rb.runbook.title} on {entity}: {inc.rule}", data, source_signal=f"{source}.alert", actor=f"source:{source}", observed_at_ms=started)
            self.fleet.log(now, "ERROR", inc.service, f"ALERT {inc.type} {inc.severity}: {inc.rule}", incident_id=inc.id)
            ladder = self.policy.escalation.ladders[inc.severity]
            self._notify(inc, ladder.chat_channel, "channel", ladder.chat_channel, f"{inc.severity} {inc.title}: alert from {source}, automated runbook {inc.runbook_id} starting", kind="info")
            level = self.policy.severity.levels[inc.severity]
            if not level.auto_mitigation or inc.severity in self.policy.escalation.auto.page_without_automation:
                self._escalate(inc, f"{inc.severity} is not auto-mitigated: a human handles it", actor="engine")
            elif self.governor.kill_switch:
                self._escalate(inc, "automation is stopped (kill switch): a human must follow the runbook", actor="engine")
            return inc

    def resolve_external_incident(self, fingerprint: str, ends_at_ms: int | None = None, *, source: str = "alertmanager") -> Incident | None:
        """The alert ``fingerprint`` resolved. Its incident resolves (a recovery.verified receipt)
        once no other alert holds it open. None when the fingerprint opened nothing still open."""
        with self.lock:
            inc = self.incidents.get(self.external_alerts.pop(fingerprint, ""))
            if inc is None or not inc.open:
                return None
            firing = inc.notes.setdefault("alerts", set())
            firing.discard(fingerprint)
            last_seen = max(e.observed_at_ms for e in inc.events)
            ended = min(self.now_ms, max(ends_at_ms if ends_at_ms is not None else self.now_ms, inc.detected_at_ms, last_seen))
            if firing or "external" not in inc.notes:
                # Other alerts still hold it, or the engine detected it itself and its own recovery criteria decide.
                self._emit(inc, ev.NOTE, f"alert {fingerprint} resolved" + (f"; {len(firing)} more still firing" if firing else ""), {"text": "alert resolved", "source": source, "fingerprint": fingerprint}, source_signal=f"{source}.alert", actor=f"source:{source}", observed_at_ms=ended)
                return inc
            rb = self.policy.runbooks[inc.type]
            inc.recovered_at_ms = ended
            inc.resolved_at_ms = self.now_ms
            mttr = inc.mttr_ms or 0
            data = {
                "resolution_status": "resolved", "status": "resolved", "resolved_by": "alert_resolved", "source": source, "fingerprint": fingerprint,
                "recovered_at": iso_utc(ended), "resolved_at": iso_utc(self.now_ms), "mttr_ms": mttr, "mttr_target_ms": rb.runbook.mttr_target_s * 1000,
                "met_mttr_target": mttr <= rb.runbook.mttr_target_s * 1000, "time_to_resolution_seconds": mttr // 1000,
                "auto_resolved": not inc.escalated, "documented_type": f"{inc.type}_resolved",
            }
            self._emit(inc, ev.RECOVERY_VERIFIED, f"resolved: the alert from {source} resolved; MTTR {mttr // 1000} s (target {rb.runbook.mttr_target_s} s)", data, source_signal=f"{source}.alert", actor=f"source:{source}", observed_at_ms=ended)
            inc.state = RESOLVED
            self.open_by_key.pop((inc.type, f"{inc.entity_kind}:{inc.entity}"), None)
            if self._ladders.get(inc.id) is not None:
                ch = self.policy.escalation.ladders[inc.severity].chat_channel
                self._notify(inc, ch, "channel", ch, f"RESOLVED {inc.severity} {inc.title} after {mttr // 1000} s", kind="update")
            return inc

    # ================================================================== reading
    def get_incident(self, incident_id: str | None) -> Incident:
        if not incident_id:
            raise KeyError("no incident id given")
        inc = self.incidents.get(incident_id)
        if inc is None:
            norm = incident_id.removeprefix("urn:uuid:").lower()
            matches = [i for k, i in self.incidents.items() if k.removeprefix("urn:uuid:").startswith(norm)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise KeyError(f"incident id {incident_id!r} is ambiguous ({len(matches)} match)")
            raise KeyError(f"no incident {incident_id!r}")
        return inc

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.open]

    def _record_history(self) -> None:
        now = self.now_ms
        history = self.history
        for name, s in self.fleet.services.items():
            history[name].append((now, s.in_rps, 100.0 * (s.err5 + s.err4), s.p99))  # s.error_pct, inline
        for name, q in self.fleet.queues.items():
            self.queue_history[name].append((now, q.depth))

    def snapshot(self) -> dict[str, Any]:
        """A consistent picture of the fleet and incidents for a UI or a status command."""
        with self.lock:
            f = self.fleet
            return {
                "now_ms": self.now_ms,
                "services": {n: dict(self.signals("service", n), critical=s.critical, revision=s.revision, config_version=s.config_version) for n, s in f.services.items()},
                "queues": {n: self.signals("queue", n) for n in f.queues},
                "circuits": {n: {"state": STATE_NAMES[b.state], "caller": b.caller, "dependency": b.dependency, "override": b.override_state is not None} for n, b in f.breakers.items()},
                "regions": {n: dict(self.signals("region", n), up=r.up, role=r.role) for n, r in f.regions.items()},
                "serving_region": f.serving,
                "dns_weights": dict(f.dns.weights),
                "edge_error_pct": f.edge_error_pct,
                "incidents": [i.summary() for i in self.incidents.values()],
                "governor": self.governor.status(self.now_ms),
                "advisories": list(self.advisories.values()),
                "faults": [x.to_dict() for x in f.active_faults(self.now_ms)],
                "stale": {k: sorted(v) for k, v in getattr(f, "stale", {}).items()},
                "sources": f.source_status() if hasattr(f, "source_status") else [],
            }


def default_target(fleet: Fleet, kind: str) -> str:
    """The target a fault hits when none is named, chosen to show its incident type."""
    tk = FAULT_KINDS[kind][1]
    defaults = {
        "traffic_surge": "acct-1001",
        "slow_consumer": "acct-1001",
        "quota_exhaustion": "acct-3003",
        "dependency_outage": "action-handler",
        "dependency_timeouts": "action-handler",
        "external_outage": "external-api",
        "slow_queries": "database",
        "cpu_saturation": "app",
        "memory_pressure": "app",
        "bad_deploy": "app",
        "bad_config": "app",
        "schema_change": "app",
        "region_outage": fleet.primary,
        "flapping_health": fleet.primary,
        "traffic_spike": "api",
    }
    t = defaults.get(kind)
    pool = {"service": fleet.services, "queue": fleet.queues, "region": fleet.regions}[tk]
    if t in pool:
        return t
    return next(iter(pool))


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Make a dict receipt-safe: floats become integers (rounded), nested too."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out[str(k)] = _clean_value(v)
    return out


def _clean_value(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return int(round(v)) if math.isfinite(v) else None
    if isinstance(v, dict):
        return _clean(v)
    if isinstance(v, (list, tuple)):
        return [_clean_value(x) for x in v]
    return str(v)
