"""One interface for every mitigation: an :class:`Action` goes in, an :class:`ActionResult` comes out.

The simulator actuator acts on the fleet model. Actuators for real systems (a command, a webhook)
implement the same protocol, so the runbook executor, the safety governor and the receipts do not
care which one runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from engine.fleet.model import Change, Fleet, slow_query_id
from engine.mitigate.breaker import CLOSED, OPEN
from engine.mitigate.scaling import next_concurrency

if TYPE_CHECKING:
    from engine.policy.models import MitigationPolicy


@dataclass(frozen=True)
class Action:
    """A mitigation to perform. ``target`` is a service, a tenant (queue), a circuit or a region."""

    name: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    actor: str = "engine"
    incident_id: str | None = None
    reason: str = ""


@dataclass
class ActionResult:
    """What happened. ``exhausted`` means this kind of action can give nothing more (escalate);
    ``deferred`` means it did not run now for a benign reason (cooldown) and may run later."""

    ok: bool
    detail: str
    changes: dict[str, Any] = field(default_factory=dict)
    exhausted: bool = False
    deferred: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)


class Actuator(Protocol):
    def apply(self, action: Action, now_ms: int) -> ActionResult: ...


class UnknownAction(ValueError):
    pass


class SimActuator:
    """Applies actions to the simulated fleet."""

    def __init__(self, fleet: Fleet, policy: MitigationPolicy) -> None:
        self.fleet = fleet
        self.policy = policy

    def apply(self, action: Action, now_ms: int) -> ActionResult:
        handler = getattr(self, f"_do_{action.name}", None)
        if handler is None:
            raise UnknownAction(f"unknown action {action.name!r}")
        return handler(action, now_ms)

    # ------------------------------------------------------------------ helpers
    def _service(self, name: str):
        try:
            return self.fleet.services[name]
        except KeyError:
            raise ValueError(f"unknown service {name!r}") from None

    def _queue(self, name: str):
        try:
            return self.fleet.queues[name]
        except KeyError:
            raise ValueError(f"unknown tenant {name!r}") from None

    # ------------------------------------------------------------------ queue
    def _do_scale_concurrency(self, a: Action, now_ms: int) -> ActionResult:
        q = self._queue(a.target)
        sp = self.policy.scaler
        if "to" in a.params:
            to = int(a.params["to"])
            if not 1 <= to <= q.limit:
                return ActionResult(False, f"concurrency {to} outside 1..{q.limit} (quota {q.quota})", exhausted=to > q.limit)
            before = q.concurrency
            q.concurrency = to
            q.last_scaled_ms = now_ms
            return ActionResult(True, f"concurrency {before} -> {to}", {"from": before, "to": to})
        if q.last_scaled_ms is not None and now_ms - q.last_scaled_ms < sp.cooldown_s * 1000 and not a.params.get("force"):
            wait = sp.cooldown_s - (now_ms - q.last_scaled_ms) // 1000
            return ActionResult(False, f"scaling cooldown: {wait} s left", deferred=True)
        d = next_concurrency(q.concurrency, q.depth, sp, q.limit)
        if d.exhausted:
            return ActionResult(False, f"quota_exceeded: concurrency already at {q.concurrency} (limit {d.limit}, quota {q.quota})", {"from": q.concurrency, "to": q.concurrency, "limit": d.limit}, exhausted=True)
        if not d.changes:
            return ActionResult(False, "no change: backlog too small to scale", deferred=True)
        before = q.concurrency
        q.concurrency = d.proposed
        q.last_scaled_ms = now_ms
        return ActionResult(True, f"concurrency {before} -> {d.proposed}", {"from": before, "to": d.proposed, "factor_ppm": d.factor_ppm, "limit": d.limit})

    def _do_rate_limit(self, a: Action, now_ms: int) -> ActionResult:
        """Per-tenant ingest limit (``max_per_second``; None lifts it)."""
        q = self._queue(a.target)
        before = q.rate_limit_per_s
        q.rate_limit_per_s = a.params.get("max_per_second")
        return ActionResult(True, f"tenant rate limit {before} -> {q.rate_limit_per_s}", {"from": before, "to": q.rate_limit_per_s})

    # ------------------------------------------------------------------ breakers
    def _breakers(self, a: Action):
        if "->" in a.target:
            b = self.fleet.breakers.get(a.target)
            if b is None:
                raise ValueError(f"unknown circuit {a.target!r}")
            return [b]
        self._service(a.target)
        found = self.fleet.breaker_for(a.target)
        if not found:
            raise ValueError(f"no circuit breaker guards calls to {a.target!r}")
        return found

    def _do_open_breaker(self, a: Action, now_ms: int) -> ActionResult:
        out = []
        for b in self._breakers(a):
            before = b.state
            b.force(now_ms, OPEN, reason=a.reason or "manual_open")
            out.append({"circuit": b.name, "from": before, "to": OPEN})
        return ActionResult(True, f"opened {', '.join(x['circuit'] for x in out)}", {"circuits": out})

    def _do_close_breaker(self, a: Action, now_ms: int) -> ActionResult:
        out = []
        for b in self._breakers(a):
            before = b.state
            b.reset(now_ms, reason=a.reason or "manual_close")
            out.append({"circuit": b.name, "from": before, "to": CLOSED})
        return ActionResult(True, f"closed {', '.join(x['circuit'] for x in out)}", {"circuits": out})

    def _do_override_breaker(self, a: Action, now_ms: int) -> ActionResult:
        dur = int(a.params.get("duration_ms", 300_000))
        state = int(a.params.get("state", CLOSED))
        out = []
        for b in self._breakers(a):
            before = b.state
            b.force(now_ms, state, until_ms=now_ms + dur, reason="override")
            out.append({"circuit": b.name, "from": before, "to": state, "until_ms": now_ms + dur})
        return ActionResult(True, f"override {', '.join(x['circuit'] for x in out)} for {dur // 1000} s", {"circuits": out})

    # ------------------------------------------------------------------ services
    def _do_restart_service(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        if not s.restartable:
            return ActionResult(False, f"{s.name} cannot be restarted from here (external service)", exhausted=True)
        rp = self.policy.restart
        ready = now_ms + (rp.grace_s + rp.startup_s) * 1000
        mode = "restart" if s.crashed or not s.up else "rolling_restart"
        if mode == "restart":
            s.up = False
        s.restart_ready_ms = ready
        self.fleet.log(now_ms, "WARN", s.name, f"{mode} requested (grace {rp.grace_s} s)", actor=a.actor)
        return ActionResult(True, f"{mode} of {s.name}, ready in {rp.grace_s + rp.startup_s} s", {"mode": mode, "ready_at_ms": ready, "previous_pod": f"{s.name}-r{s.revision}-{s.replicas}"})

    def _do_scale_replicas(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        rp = self.policy.replicas
        pending = sum(c for _, c in s.pending_replicas)
        current = s.replicas + pending
        to = int(a.params.get("to", current + rp.step))
        if current >= rp.max_replicas:
            return ActionResult(False, f"{s.name} already at the replica maximum ({rp.max_replicas})", {"from": current, "to": current}, exhausted=True)
        to = min(to, rp.max_replicas)
        if to <= current:
            if to < s.replicas:
                before = s.replicas
                s.replicas = max(1, to)
                s.pending_replicas = []
                return ActionResult(True, f"replicas {before} -> {s.replicas}", {"from": before, "to": s.replicas})
            return ActionResult(False, "no change", deferred=True)
        s.pending_replicas.append((now_ms + rp.startup_s * 1000, to - current))
        return ActionResult(True, f"replicas {current} -> {to} (ready in {rp.startup_s} s)", {"from": current, "to": to})

    def _do_prioritize_requests(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        before = s.qos_shed
        s.qos_shed = float(a.params.get("shed", 0.15))
        s.config["batch_size"] = 100
        return ActionResult(True, f"low-priority traffic shed {int(s.qos_shed * 100)} %, batch size 100", {"from_shed_bp": int(before * 10000), "to_shed_bp": int(s.qos_shed * 10000)})

    def _do_throttle(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        before = s.rate_limit_rps
        limit = a.params.get("max_per_second", self.policy.throttle.rate_limit_requests_per_sec)
        s.rate_limit_rps = None if limit is None else float(limit)
        return ActionResult(True, f"{s.name} rate limit {before} -> {s.rate_limit_rps}", {"from": before, "to": s.rate_limit_rps})

    def _do_create_index(self, a: Action, now_ms: int) -> ActionResult:
        db = self._service(a.target)
        wanted = a.params.get("index")
        if wanted is None:
            missing = [q.missing_index for q in slow_queries(self.fleet) if q.missing_index in db.pre_approved_indexes]
            if not missing:
                return ActionResult(False, "no slow query is missing a pre-approved index", exhausted=True)
            wanted = missing[0]
        if wanted in db.indexes or wanted in db.pending_indexes:
            return ActionResult(False, f"index {wanted} already exists", deferred=True)
        if wanted not in db.pre_approved_indexes and not a.params.get("approved"):
            return ActionResult(False, f"index {wanted} is not pre-approved", exhausted=True)
        db.pending_indexes[wanted] = now_ms + self.policy.rollout.index_build_s * 1000
        db.changes.append(Change(now_ms, "index", None, wanted, f"CREATE INDEX {wanted}; ANALYZE", actor=a.actor))
        for f in self.fleet.faults:
            if f.kind == "slow_queries" and f.params.get("index") == wanted and f.neutralized_ms is None:
                f.neutralized_ms = now_ms
        return ActionResult(True, f"building index {wanted} concurrently (pre-tested, no table lock), then ANALYZE", {"index": wanted, "ready_in_s": self.policy.rollout.index_build_s})

    def _last_change(self, s, kind: str) -> Change | None:
        for c in reversed(s.changes):
            if c.kind == kind:
                return c
        return None

    def _do_rollback_deploy(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        good = [c.before for c in s.changes if c.kind == "deploy" and c.before not in s.bad_revisions]
        target_rev = a.params.get("revision")
        if target_rev is None:
            last = self._last_change(s, "deploy")
            if last is None:
                return ActionResult(False, f"{s.name} has no deploy to roll back", exhausted=True)
            target_rev = last.before
        before = s.revision
        if before == target_rev:
            return ActionResult(False, f"{s.name} already runs revision {before}", deferred=True)
        self.fleet.start_rollout(s, "deploy", now_ms, self.policy.rollout.deploy_s, s.bad_revisions.get(before, 0.0))
        s.revision = int(target_rev)
        s.changes.append(Change(now_ms, "deploy", before, s.revision, f"rollback to revision {s.revision}", actor=a.actor))
        for f in self.fleet.faults:
            if f.kind == "bad_deploy" and f.target == s.name and f.neutralized_ms is None:
                f.neutralized_ms = now_ms
        return ActionResult(True, f"rolled back {s.name} revision {before} -> {s.revision}", {"previous_revision": before, "new_revision": s.revision, "known_good": good[-1] if good else s.revision})

    def _do_revert_config(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        at = a.params.get("before_ms")
        configs = [c for c in s.changes if c.kind == "config"]
        if at is not None:
            older = [c for c in configs if c.at_ms >= int(at)]
            if not older:
                return ActionResult(False, f"no config change on {s.name} after that time", deferred=True)
            target = older[0].before
        else:
            if not configs:
                return ActionResult(False, f"{s.name} has no config change to revert", exhausted=True)
            target = configs[-1].before
        before = s.config_version
        if before == target:
            return ActionResult(False, f"{s.name} already runs config v{before}", deferred=True)
        self.fleet.start_rollout(s, "config", now_ms, self.policy.rollout.config_s, s.bad_configs.get(before, 0.0))
        s.config_version = int(target)
        if target in s.config_versions:
            s.config = dict(s.config_versions[target])
        else:
            s.config["payments.timeout_ms"] = 2000
        s.changes.append(Change(now_ms, "config", before, s.config_version, f"revert to config v{s.config_version}", actor=a.actor))
        for f in self.fleet.faults:
            if f.kind == "bad_config" and f.target == s.name and f.neutralized_ms is None:
                f.neutralized_ms = now_ms
        return ActionResult(True, f"reverted {s.name} config v{before} -> v{s.config_version}", {"from_version": before, "to_version": s.config_version})

    def _do_disable_feature_flag(self, a: Action, now_ms: int) -> ActionResult:
        s = self._service(a.target)
        flag = a.params.get("flag")
        if flag is None:
            flags = [c for c in s.changes if c.kind == "flag" and c.after is True]
            if not flags:
                return ActionResult(False, f"no feature flag was turned on recently on {s.name}", exhausted=True)
            flag = flags[-1].detail
        if flag not in s.feature_flags:
            raise ValueError(f"unknown feature flag {flag!r} on {s.name}")
        if not s.feature_flags[flag]:
            return ActionResult(False, f"flag {flag} is already off", deferred=True)
        s.feature_flags[flag] = False
        s.changes.append(Change(now_ms, "flag", True, False, flag, actor=a.actor))
        for f in self.fleet.faults:
            if f.kind == "schema_change" and f.target == s.name and f.params.get("flag") == flag and f.neutralized_ms is None:
                f.neutralized_ms = now_ms
        return ActionResult(True, f"disabled feature flag {flag} on {s.name} (atomic, no restart)", {"flag": flag, "from": True, "to": False})

    # ------------------------------------------------------------------ regions
    def _do_failover_region(self, a: Action, now_ms: int) -> ActionResult:
        f = self.fleet
        source = a.target if a.target in f.regions else f.serving
        target = f.standby if source == f.primary else f.primary
        standby = f.regions[target]
        if not standby.up or not standby.last_check_ok:
            return ActionResult(False, f"standby {target} is not healthy: no safe failover", exhausted=True)
        if f.dns.moving:
            return ActionResult(False, "a DNS change is already propagating", deferred=True)
        if f.dns.weights.get(target, 0.0) >= 100.0:
            return ActionResult(False, f"traffic already on {target}", deferred=True)
        f.dns.start(source, target, now_ms + self.policy.failover.dns_update_timeout_s * 1000, self.policy.failover.propagation)
        lifted = [s.name for s in f.services.values() if s.rate_limit_rps is not None]
        for s in f.services.values():
            s.rate_limit_rps = None
        f.log(now_ms, "WARN", "edge", f"DNS A record switched {source} -> {target}", ttl_s=self.policy.failover.dns_ttl_s)
        return ActionResult(
            True,
            f"failover {source} -> {target}: DNS updated, propagating over ~{self.policy.failover.propagation[-1][0]} s",
            {"from": source, "to": target, "standby_verified": True, "rate_limits_lifted": lifted, "estimated_time_seconds": self.policy.failover.propagation[-1][0]},
        )

    def _do_failback_region(self, a: Action, now_ms: int) -> ActionResult:
        f = self.fleet
        target = a.target
        if target not in f.regions:
            raise ValueError(f"unknown region {target!r}")
        r = f.regions[target]
        need = self.policy.failover.failback_passing_checks
        if r.consecutive_passed < need:
            return ActionResult(False, f"{target} has passed {r.consecutive_passed} consecutive health checks; failback needs {need}", deferred=True)
        if f.dns.weights.get(target, 0.0) >= 100.0:
            return ActionResult(False, f"traffic already on {target}", deferred=True)
        source = next(x for x in f.regions if x != target)
        f.dns.start(source, target, now_ms, self.policy.failover.propagation)
        return ActionResult(True, f"failback {source} -> {target} started", {"from": source, "to": target})

    def _do_resolve_replication_conflicts(self, a: Action, now_ms: int) -> ActionResult:
        """Settle records one region holds that the other never received (params strategy:
        ``standby-wins`` discards them, replayable from the write log; ``timestamp-wins`` merges
        them, the newest write of each record winning; it needs both regions reachable)."""
        f = self.fleet
        strategy = a.params.get("strategy")
        if strategy not in ("standby-wins", "timestamp-wins"):
            raise ValueError(f"unknown conflict strategy {strategy!r} (use standby-wins or timestamp-wins)")
        holders = [r for r in f.regions.values() if r.stranded > 0 and r.name != f.standby] if strategy == "standby-wins" else [r for r in f.regions.values() if r.stranded > 0]
        if not holders:
            return ActionResult(False, "no conflicting records between the regions", deferred=True)
        if strategy == "timestamp-wins" and not all(r.up for r in f.regions.values()):
            down = ", ".join(r.name for r in f.regions.values() if not r.up)
            return ActionResult(False, f"timestamp-wins compares both copies of each record: {down} is not reachable (standby-wins does not need it)", deferred=True)
        out = []
        for r in holders:
            n = r.stranded
            peer = next(x for x in f.regions.values() if x is not r)
            if strategy == "standby-wins":
                r.records -= n
                f.lost_records += int(round(n))
            else:
                peer.records += n
            r.stranded = 0.0
            r.diverged = False
            out.append({"region": r.name, "records": int(round(n)), "into": peer.name})
            f.log(now_ms, "WARN", "replication", f"conflict-resolve {strategy}: {int(round(n))} records of {r.name} " + ("discarded (replayable from the write log)" if strategy == "standby-wins" else f"merged into {peer.name}"), actor=a.actor)
        total = sum(x["records"] for x in out)
        verb = "discarded" if strategy == "standby-wins" else "merged"
        return ActionResult(True, f"{strategy}: {total} conflicting records {verb}", {"strategy": strategy, "records": total, "regions": out})

    def _do_set_compression(self, a: Action, now_ms: int) -> ActionResult:
        """Turn response compression on (params algorithm) or off (algorithm None) for a service."""
        s = self._service(a.target)
        algo = a.params.get("algorithm")
        if algo is not None and algo not in self.policy.compression.ratio_pct:
            raise ValueError(f"unknown compression algorithm {algo!r} (known: {', '.join(self.policy.compression.ratio_pct)})")
        before = s.compression_algorithm
        if before == algo:
            return ActionResult(False, f"{s.name} compression already {algo or 'off'}", deferred=True)
        s.compression_algorithm = algo
        s.compression = algo is not None
        s.changes.append(Change(now_ms, "config", s.config_version, s.config_version, f"response compression: {before or 'off'} -> {algo or 'off'}", actor=a.actor))
        for f in self.fleet.faults:
            if f.kind == "large_responses" and f.target == s.name and algo is not None and f.neutralized_ms is None:
                f.neutralized_ms = now_ms
        return ActionResult(True, f"{s.name} response compression {before or 'off'} -> {algo or 'off'}", {"from": before, "to": algo})

    def _do_optimize_query(self, a: Action, now_ms: int) -> ActionResult:
        """Rewrite one slow query (params query_id): it still scans, so it keeps part of its extra time."""
        db = self._service(a.target)
        qid = a.params.get("query_id")
        faults = [f for f in self.fleet.faults if f.kind == "slow_queries" and f.target == db.name and slow_query_id(f) == qid]
        if not faults:
            raise ValueError(f"no query {qid!r} in {db.name}'s slow-query log")
        if qid in db.optimized_queries:
            return ActionResult(False, f"query {qid} is already rewritten", deferred=True)
        if all(f.params["index"] in db.indexes for f in faults):
            return ActionResult(False, f"query {qid} already uses index {faults[0].params['index']}: nothing to rewrite", deferred=True)
        left = self.policy.query_optimizer.remaining_pct / 100.0
        db.optimized_queries[qid] = left
        db.changes.append(Change(now_ms, "index", None, None, f"rewrite query {qid} (narrower select, bounded scan)", actor=a.actor))
        return ActionResult(True, f"query {qid} rewritten: {int(left * 100)} % of its extra time left (the missing index removes the rest)", {"query_id": qid, "remaining_pct": int(left * 100)})

    def _do_drop_index(self, a: Action, now_ms: int) -> ActionResult:
        """Drop an index (params index): the inverse of create_index, for a rollback."""
        db = self._service(a.target)
        idx = a.params.get("index")
        if idx in db.pending_indexes:
            del db.pending_indexes[idx]
        elif idx in db.indexes:
            db.indexes.discard(idx)
        else:
            return ActionResult(False, f"index {idx} does not exist on {db.name}", deferred=True)
        db.changes.append(Change(now_ms, "index", idx, None, f"DROP INDEX {idx}", actor=a.actor))
        return ActionResult(True, f"dropped index {idx} on {db.name}", {"index": idx})

    def _do_none(self, a: Action, now_ms: int) -> ActionResult:
        return ActionResult(True, a.reason or "no automatic action")


def slow_queries(fleet: Fleet) -> list:
    """The database's slow-query log: queries slowed by a missing index, right now."""
    from engine.fleet.model import SlowQuery

    out = []
    for f in fleet.faults:
        if f.kind != "slow_queries" or not f.active(fleet.now_ms):
            continue
        db = fleet.services.get(f.target)
        if db is None or f.params["index"] in db.indexes:
            continue
        caller = f.params.get("caller", "app")
        calls = sum(e.calls for e in db.callers if e.caller.name == caller) * 60.0
        qid = slow_query_id(f)
        out.append(
            SlowQuery(
                query_id=qid,
                table=f.params["table"],
                plan=f"Seq Scan on {f.params['table']}",
                mean_ms=float(f.params["extra_ms"]) * db.optimized_queries.get(qid, 1.0) + db.p50,
                calls_per_min=calls,
                missing_index=f.params["index"],
                caller=caller,
            )
        )
    return out
