"""What the control socket can ask of a live engine: the operations, their arguments, their answers.

:class:`Operations` turns ``(op, args)`` into a JSON-able result or an :class:`OpError`. It works
on any :class:`~engine.core.Engine` (a live one behind the socket, or a virtual-clock one in a
test), takes the engine's lock for every read and change, validates arguments with pydantic (an
error names the argument), resolves times such as ``30m-ago`` against the engine's own clock, and
sends every change through :meth:`Engine.manual_action` (the safety governor, dry-run, the
incident's receipts) plus one signed ``engine.operator_action`` receipt per command.

Read-only operations live in :mod:`engine.control.diagnose`; changes are planned in
:mod:`engine.control.manual`.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.clock import VirtualClock, iso_utc, parse_time_ref
from engine.control.catalog import Catalog, load_catalog
from engine.control.history import MetricsHistory
from engine.control.protocol import BAD_ARGUMENT, NOT_FOUND, OpError, REFUSED, UNKNOWN_OP
from engine.control.records import OperatorLog


class Args(BaseModel):
    """Base of every operation's arguments: unknown arguments are errors."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


class SwitchArgs(Args):
    on: bool
    actor: str = "unknown"
    reason: str = ""


class InjectArgs(Args):
    fault: str
    target: str | None = None
    duration_ms: int | None = None
    params: dict[str, Any] = {}
    actor: str = "chaos"


class ClearArgs(Args):
    fault_id: str
    actor: str = "unknown"


class IncidentsArgs(Args):
    open_only: bool = False


class Operations:
    """The control operations over one engine."""

    def __init__(
        self,
        engine: Any,
        *,
        history: MetricsHistory | None = None,
        operator_log: OperatorLog | None = None,
        live: Any = None,
        catalog: Catalog | None = None,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.history = history
        self.oplog = operator_log or OperatorLog(engine)
        self.live = live
        self.catalog = catalog or load_catalog()
        # How a waiting operation lets engine time pass: a live engine runs by itself; a
        # virtual-clock engine in a test is advanced by ``advance(ms)``.
        self.advance = advance
        from engine.control import diagnose, manual

        self._table: dict[str, tuple[type[Args], Callable[[Any], Any]]] = {
            "ping": (NoArgs, self.ping),
            "engine.status": (NoArgs, self.status),
            "engine.kill_switch": (SwitchArgs, self.kill_switch),
            "engine.dry_run": (SwitchArgs, self.dry_run),
            "chaos.inject": (InjectArgs, self.inject),
            "chaos.clear": (ClearArgs, self.clear_fault),
            "incidents.list": (IncidentsArgs, self.incidents),
            "act": (manual.ActArgs, lambda a: manual.act(self, a)),
        }
        for name, (model, fn) in diagnose.OPERATIONS.items():
            self._table[name] = (model, (lambda f: lambda a: f(self, a))(fn))
        from engine.control import faces  # what attached consoles ask (console.view, incident.*, warroom.*)

        self._table.update(faces.operations(self))

    @property
    def names(self) -> list[str]:
        return sorted(self._table)

    # ------------------------------------------------------------------ dispatch
    def handle(self, op: str, args: dict[str, Any]) -> Any:
        """Run one operation; raises OpError for anything a caller should be told."""
        entry = self._table.get(op)
        if entry is None:
            raise OpError(UNKNOWN_OP, f"unknown operation {op!r} (known: {', '.join(self.names)})")
        model, fn = entry
        try:
            parsed = model.model_validate(args)
        except ValidationError as exc:
            err = exc.errors()[0]
            arg = str(err["loc"][0]) if err["loc"] else None
            what = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
            raise OpError(BAD_ARGUMENT, f"{what}" + (f" ({arg})" if arg and err["type"] == "extra_forbidden" else ""), arg) from None
        return fn(parsed)

    # ------------------------------------------------------------------ shared helpers
    def now(self) -> int:
        return self.engine.now_ms

    def time_ref(self, text: str | None, arg: str, default: int | None = None) -> int | None:
        """``30m``, ``30m-ago``, ``now``, an ISO time, against the engine's clock."""
        if text is None or text == "":
            return default
        try:
            return parse_time_ref(str(text), self.engine.now_ms)
        except ValueError as exc:
            raise OpError(BAD_ARGUMENT, str(exc), arg) from None

    def service(self, name: str | None, arg: str = "service") -> Any:
        f = self.engine.fleet
        if name is None or name not in f.services:
            raise OpError(BAD_ARGUMENT, f"unknown service {name!r} (known: {', '.join(f.services)})", arg)
        return f.services[name]

    def tenant(self, name: str | None, arg: str = "account_id") -> Any:
        f = self.engine.fleet
        if name is None or name not in f.queues:
            raise OpError(BAD_ARGUMENT, f"unknown account {name!r} (known tenants: {', '.join(f.queues)})", arg)
        return f.queues[name]

    def region(self, name: str | None, arg: str = "region") -> Any:
        f = self.engine.fleet
        if name is None or name not in f.regions:
            raise OpError(BAD_ARGUMENT, f"unknown region {name!r} (known: {', '.join(f.regions)})", arg)
        return f.regions[name]

    def database(self, name: str | None, arg: str = "database") -> Any:
        """A database service by name, by alias (``prod``), or the only one when none is named."""
        f = self.engine.fleet
        dbs = [s for s in f.services.values() if s.kind == "database"]
        if not dbs:
            raise OpError(NOT_FOUND, "this fleet has no database")
        if name is None:
            if len(dbs) == 1:
                return dbs[0]
            raise OpError(BAD_ARGUMENT, f"several databases: name one ({', '.join(d.name for d in dbs)})", arg)
        real = self.catalog.databases.get(name, name)
        for d in dbs:
            if d.name == real:
                return d
        raise OpError(BAD_ARGUMENT, f"unknown database {name!r} (known: {', '.join([d.name for d in dbs] + sorted(self.catalog.databases))})", arg)

    def wait_engine(self, predicate: Callable[[], bool], timeout_ms: int) -> tuple[bool, int]:
        """Let engine time pass (up to ``timeout_ms`` of it) until ``predicate()`` holds, without
        holding the engine lock. Returns (held, engine ms waited)."""
        eng = self.engine
        start = eng.now_ms
        with eng.lock:
            if predicate():
                return True, 0
        if timeout_ms <= 0:
            return False, 0
        if self.advance is not None or isinstance(eng.clock, VirtualClock) and self.live is None:
            step = eng.tick_ms
            while eng.now_ms - start < timeout_ms:
                if self.advance is not None:
                    self.advance(step)
                else:
                    eng.run_for(step)
                with eng.lock:
                    if predicate():
                        return True, eng.now_ms - start
            return False, eng.now_ms - start
        speed = getattr(eng.clock, "speed", 1.0) or 1.0
        real_deadline = time.monotonic() + timeout_ms / 1000.0 / speed + 2.0
        while eng.now_ms - start < timeout_ms and time.monotonic() < real_deadline:
            time.sleep(0.02)
            with eng.lock:
                if predicate():
                    return True, eng.now_ms - start
        return False, eng.now_ms - start

    # ------------------------------------------------------------------ engine
    def ping(self, a: NoArgs) -> dict[str, Any]:
        eng = self.engine
        return {
            "pid": os.getpid(),
            "protocol": 1,
            "now_ms": eng.now_ms,
            "speed": getattr(eng.clock, "speed", None),
            "data_dir": str(self.live.data_dir.root) if self.live is not None else None,
        }

    def status(self, a: NoArgs) -> dict[str, Any]:
        eng = self.engine
        with eng.lock:
            live = self.live
            return {
                "pid": os.getpid(),
                "data_dir": str(live.data_dir.root) if live is not None else None,
                "description": getattr(live, "description", None),
                "now_ms": eng.now_ms,
                "now": iso_utc(eng.now_ms),
                "started_ms": eng.started_ms,
                "uptime_s": (eng.now_ms - eng.started_ms) // 1000,
                "ticks": eng.ticks,
                "seed": eng.seed,
                "speed": getattr(eng.clock, "speed", None),
                "paused": bool(getattr(eng.clock, "paused", False)),
                "kill_switch": eng.governor.kill_switch,
                "dry_run": eng.governor.dry_run,
                "governor": eng.governor.status(eng.now_ms),
                "incidents_total": len(eng.incidents),
                "open_incidents": [_short(i) for i in eng.incidents.values() if i.open],
                "faults": [f.to_dict() for f in eng.fleet.active_faults(eng.now_ms)],
                "serving_region": eng.fleet.serving,
                "receipts": bool(live is not None and getattr(live, "sink", None) is not None),
                "receipt_errors": len(getattr(live, "receipt_errors", []) or []) + len(self.oplog.errors),
                "crashed": bool(live is not None and getattr(live, "crash", None) is not None),
                "sources": eng.fleet.source_status() if hasattr(eng.fleet, "source_status") else [{"kind": "sim", "state": "simulated fleet"}],
                "stale": {k: sorted(v) for k, v in getattr(eng.fleet, "stale", {}).items() if v},
            }

    def incidents(self, a: IncidentsArgs) -> list[dict[str, Any]]:
        eng = self.engine
        with eng.lock:
            return [i.summary() for i in eng.incidents.values() if i.open or not a.open_only]

    def kill_switch(self, a: SwitchArgs) -> dict[str, Any]:
        return self._switch("kill_switch", a)

    def dry_run(self, a: SwitchArgs) -> dict[str, Any]:
        return self._switch("dry_run", a)

    def _switch(self, which: str, a: SwitchArgs) -> dict[str, Any]:
        eng = self.engine
        with eng.lock:
            before = getattr(eng.governor, which)
            label = "kill switch" if which == "kill_switch" else "dry-run"
            if before == a.on:
                receipt = self.oplog.record(operation=f"engine.{which}", actor=a.actor, status="no_change", summary=f"{label} already {'on' if a.on else 'off'}", args={"on": a.on}, before={which: before}, after={which: before}, reason=a.reason)
                return {which: before, "changed": False, "receipt_id": receipt}
            if which == "kill_switch":
                eng.set_kill_switch(a.on, a.actor)
            else:
                eng.set_dry_run(a.on, a.actor)
            after = getattr(eng.governor, which)
            receipt = self.oplog.record(operation=f"engine.{which}", actor=a.actor, status="applied", summary=f"{label} {'on' if after else 'off'}", args={"on": a.on}, before={which: before}, after={which: after}, reason=a.reason)
            return {which: after, "changed": True, "receipt_id": receipt}

    def inject(self, a: InjectArgs) -> dict[str, Any]:
        from engine.fleet.faults import FAULT_KINDS

        eng = self.engine
        if a.fault not in FAULT_KINDS:
            raise OpError(BAD_ARGUMENT, f"unknown fault {a.fault!r} (known: {', '.join(sorted(FAULT_KINDS))})", "fault")
        if a.duration_ms is not None and not 1000 <= a.duration_ms <= 7 * 86_400_000:
            raise OpError(BAD_ARGUMENT, "must be between 1s and 7d", "duration_ms")
        with eng.lock:
            target = self._fault_target(a.fault, a.target)
            try:
                fault = eng.inject(a.fault, target, params=a.params or None, duration_s=None if a.duration_ms is None else a.duration_ms / 1000, actor=f"person:{a.actor}")
            except ValueError as exc:
                msg = str(exc)
                arg = "params" if "parameter" in msg else "target"
                raise OpError(BAD_ARGUMENT, msg, arg) from None
            d = fault.to_dict()
            receipt = self.oplog.record(operation="chaos.inject", actor=a.actor, status="applied", summary=f"injected {a.fault} on {fault.target}", args={"fault": a.fault, "target": a.target, "duration_ms": a.duration_ms, "params": a.params}, target=fault.target, after=d)
            return dict(d, receipt_id=receipt, incident_type=FAULT_KINDS[a.fault][0])

    def _fault_target(self, fault: str, target: str | None) -> str | None:
        """The entity a fault goes on: ``target`` if the fault acts on it, else an error naming
        the valid ones (a slow query on an app server, say, would do nothing)."""
        from engine.control.catalog import fault_target_kind, fault_targets
        from engine.core import default_target

        fleet = self.engine.fleet
        if not getattr(fleet, "simulated", True):
            return target  # a real system: the fleet itself says what it allows
        valid = fault_targets(fleet, fault)
        what = fault_target_kind(fault)
        if not valid:
            raise OpError(BAD_ARGUMENT, f"{fault} acts on a {what}, and this fleet has none", "target")
        if target is None:
            t = default_target(fleet, fault)
            return t if t in valid else valid[0]
        if target not in valid:
            shown = ", ".join(valid[:12]) + (f", ... ({len(valid)} in all)" if len(valid) > 12 else "")
            raise OpError(BAD_ARGUMENT, f"{fault} acts on a {what}: {target!r} is not one (valid targets: {shown})", "target")
        return target

    def clear_fault(self, a: ClearArgs) -> dict[str, Any]:
        eng = self.engine
        with eng.lock:
            try:
                fault = eng.fleet.clear_fault(a.fault_id, eng.now_ms)
            except ValueError as exc:
                raise OpError(NOT_FOUND, str(exc), "fault_id") from None
            receipt = self.oplog.record(operation="chaos.clear", actor=a.actor, status="applied", summary=f"cleared fault {a.fault_id} ({fault.kind} on {fault.target})", args={"fault_id": a.fault_id}, target=fault.target, after=fault.to_dict())
            return dict(fault.to_dict(), receipt_id=receipt)


def _short(i: Any) -> dict[str, Any]:
    return {
        "id": i.id,
        "type": i.type,
        "severity": i.severity,
        "max_severity": i.max_severity,
        "state": i.state,
        "entity": i.entity,
        "service": i.service,
        "region": i.region,
        "title": i.title,
        "detected_at_ms": i.detected_at_ms,
        "escalated": i.escalated,
    }


def refused(message: str, arg: str | None = None) -> OpError:
    return OpError(REFUSED, message, arg)
