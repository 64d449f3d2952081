"""Where the console's engine comes from, and the record of what the operator did with it.

A :class:`ConsoleSession` is what the console talks to: the engine, the speed and pause controls,
and every operator action (acknowledge, escalate, mitigate, inject, kill switch, dry-run, note),
each of which goes through the engine (so through the safety governor, and into the event log)
and, when a recorder is attached, into a recording that ``ggen console --replay FILE`` plays again.

- :class:`LiveSession`: a :class:`~engine.live.LiveEngine` on the wall clock, optionally sped up;
  what ``ggen console`` runs.
- :class:`VirtualSession`: an engine on a virtual clock that moves only when told; tests, snapshots
  and benchmarks use it so what the screen shows is the same on every run.

Recordings (:mod:`console.tui.recording`) keep the seed, the scenario and the operator's actions
with the engine time of each. Replaying re-runs the same seed and scenario on a sped-up clock and
applies each action at the same engine tick, so the run unfolds the same way.
"""
from __future__ import annotations

import dataclasses
import getpass
import os
import shutil
import tempfile
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.clock import VirtualClock, iso_utc
from engine.core import Engine
from engine.datadir import DataDir
from engine.incident import Incident
from engine.mitigate.actuator import ActionResult
from engine.policy.bundle import Policy

if TYPE_CHECKING:
    from console.tui.recording import Recorder, Recording
    from engine.drill.scenario import Scenario


# ============================================================================ recordings
class ReplayError(ValueError):
    """A replay file that cannot be played; the message names the file and the field."""


# ============================================================================ scripted engine
def incident_ref(engine: Engine, inc: Incident) -> dict[str, Any]:
    """How a recording names an incident: ids differ between runs, type + entity + time do not."""
    return {"type": inc.type, "entity": inc.entity, "detected_ms": inc.detected_at_ms - engine.started_ms}


def resolve_ref(engine: Engine, ref: dict[str, Any]) -> Incident:
    cands = [i for i in engine.incidents.values() if i.type == ref.get("type") and i.entity == ref.get("entity")]
    if not cands:
        raise KeyError(f"no {ref.get('type')} incident on {ref.get('entity')} to replay this action on")
    at = int(ref.get("detected_ms", 0))
    return min(cands, key=lambda i: abs(i.detected_at_ms - engine.started_ms - at))


def apply_action(engine: Engine, kind: str, args: dict[str, Any]) -> Any:
    """Perform one recorded operator action on ``engine`` (through its public methods)."""
    actor = str(args.get("actor", "replay"))
    if kind == "inject":
        return engine.inject(args["fault"], args.get("target"), params=args.get("params") or None, duration_s=args.get("duration_s"), actor=actor)
    if kind == "kill_switch":
        return engine.set_kill_switch(bool(args["on"]), actor)
    if kind == "dry_run":
        return engine.set_dry_run(bool(args["on"]), actor)
    if kind == "manual_action":
        iid = resolve_ref(engine, args["incident"]).id if args.get("incident") else None
        return engine.manual_action(args["action"], args["target"], actor=actor, incident_id=iid, params=args.get("params") or None, reason=args.get("reason", ""))
    inc = resolve_ref(engine, args["incident"])
    if kind == "acknowledge":
        return engine.acknowledge(inc.id, actor)
    if kind == "escalate":
        return engine.escalate(inc.id, actor, args.get("reason") or "escalated by a person")
    if kind == "note":
        return engine.note(inc.id, actor, str(args.get("text", "")))
    raise ValueError(f"unknown action kind {kind!r}")


@dataclasses.dataclass(order=True)
class ScriptStep:
    """Something the engine does at ``at_ms`` after it started: a scenario fault or a recorded action."""

    at_ms: int
    order: int
    kind: str = dataclasses.field(compare=False)
    args: dict[str, Any] = dataclasses.field(compare=False, default_factory=dict)


class ScriptedEngine(Engine):
    """An engine that plays timed steps at exact ticks, so a scenario or a recording unfolds the
    same way on any clock speed. Steps due at engine time T run after tick T, before tick T+1."""

    def __init__(self, *args: Any, script: list[ScriptStep] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.script: deque[ScriptStep] = deque(sorted(script or []))
        self.script_total = len(self.script)
        self.script_errors: list[str] = []
        self.on_script_error: list[Callable[[str], None]] = []

    def step(self) -> None:
        with self.lock:
            self.play_due()
            super().step()

    def play_due(self) -> None:
        offset = self.now_ms - self.started_ms
        while self.script and self.script[0].at_ms <= offset:
            st = self.script.popleft()
            try:
                apply_action(self, st.kind, st.args)
            except (KeyError, ValueError) as exc:
                msg = f"replayed {st.kind} at +{st.at_ms // 1000} s not applied: {exc}"
                self.script_errors.append(msg)
                for fn in list(self.on_script_error):
                    fn(msg)


def scenario_script(sc: "Scenario") -> list[ScriptStep]:
    """A scenario's faults as script steps: each at its ``at_s`` after the warm-up."""
    out = []
    for i, f in enumerate(sc.faults):
        at = sc.scenario.warmup_s * 1000 + int(f.at_s * 1000)
        out.append(ScriptStep(at, i, "inject", {"fault": f.kind, "target": f.target, "params": dict(f.params), "duration_s": f.duration_s, "actor": f"scenario:{sc.name}"}))
    return out


def recording_script(rec: Recording, sc: "Scenario | None") -> list[ScriptStep]:
    steps = scenario_script(sc) if sc else []
    base = len(steps)
    steps += [ScriptStep(a.at_ms, base + i, a.kind, dict(a.args)) for i, a in enumerate(rec.actions)]
    return steps


def policy_for(policy: Policy, fleet_size: int | None, seed: int) -> Policy:
    """The policy with a generated fleet of ``fleet_size`` services in place of fleet.toml."""
    if not fleet_size:
        return policy
    from engine.fleet.synthetic import synthetic_fleet

    return dataclasses.replace(policy, fleet=synthetic_fleet(fleet_size, seed))


def default_actor() -> str:
    """Who the operator is: $GGEN_ACTOR, else the login name."""
    env = os.environ.get("GGEN_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:
        return "operator"


# ============================================================================ sessions
class ConsoleSession:
    """The console's handle on an engine: state for the screen, and every operator action."""

    mode = "live"

    def __init__(
        self,
        engine: Engine,
        *,
        data_dir: DataDir | None,
        actor: str,
        scenario: "Scenario | None" = None,
        recorder: Recorder | None = None,
        replay_of: str | None = None,
        receipts: bool = True,
    ) -> None:
        self.engine = engine
        self.policy = engine.policy
        self.data_dir = data_dir
        self.actor = actor
        self.scenario = scenario
        self.recorder = recorder
        self.replay_of = replay_of
        self.receipts = receipts and data_dir is not None
        self._notices: deque[dict[str, Any]] = deque(maxlen=5000)
        self._stopped = False
        from engine.view import ViewExtras

        self.extras = ViewExtras(engine)  # the on-call pair and delivery failures, for the view
        with engine.lock:
            self._notices.extend(list(engine.notices)[-200:])
            engine.on_notice(self._notices.append)
        if isinstance(engine, ScriptedEngine):
            engine.on_script_error.append(lambda msg: self.console_notice("replay.error", msg))

    # ------------------------------------------------------------------ state
    @property
    def speed(self) -> float:
        raise NotImplementedError

    @property
    def paused(self) -> bool:
        raise NotImplementedError

    def set_speed(self, speed: float) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    @property
    def crash_text(self) -> str | None:
        return None

    @property
    def title(self) -> str:
        if self.replay_of:
            return f"replay of {self.replay_of}"
        if self.scenario is not None:
            return f"scenario {self.scenario.name}"
        return self.mode

    def script_progress(self) -> tuple[int, int] | None:
        """(steps played, steps in all) of a scenario or recording being played."""
        e = self.engine
        if isinstance(e, ScriptedEngine) and e.script_total:
            return e.script_total - len(e.script), e.script_total
        return None

    def drain_notices(self) -> list[dict[str, Any]]:
        """Engine notices (and the console's own) since the last call, oldest first."""
        out = []
        while True:
            try:
                out.append(self._notices.popleft())
            except IndexError:
                return out

    def console_notice(self, kind: str, text: str, **data: Any) -> None:
        """A line for the notices feed from the console itself (action results, replay problems)."""
        self._notices.append({"at_ms": self.engine.now_ms, "kind": kind, "text": text, **data})

    def stop(self) -> None:
        """Stop the engine and close what the session opened. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop()
        if self.recorder is not None:
            self.recorder.close(self.engine.now_ms - self.engine.started_ms)

    def _stop(self) -> None:
        pass

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ------------------------------------------------------------------ reading the engine
    @property
    def now_ms(self) -> int:
        return self.engine.now_ms

    def read_view(self, selected_id: str | None = None, spark_samples: int | None = None) -> Any:
        """A :class:`~engine.view.ConsoleView` of the engine (worker thread, 4 Hz)."""
        from engine.view import SPARK_SAMPLES, read_engine_view

        return read_engine_view(
            self.engine,
            selected_id,
            SPARK_SAMPLES if spark_samples is None else spark_samples,
            speed=self.speed,
            paused=self.paused,
            mode=self.mode,
            title=self.title,
            script=self.script_progress(),
            crash=self.crash_text,
            notices=self.drain_notices(),
            extras=self.extras,
        )

    def incident_events(self, incident_id: str) -> Any:
        from engine.view import incident_events

        return incident_events(self.engine, incident_id)

    def incident_facts(self, incident_id: str) -> dict[str, Any]:
        from engine.view import incident_facts

        return incident_facts(self.engine, incident_id)

    def similar_query(self, incident_id: str) -> tuple[str, dict[str, Any], list[str]]:
        from engine.view import similar_query

        return similar_query(self.engine, incident_id)

    def fault_menu(self) -> list[tuple[str, str, str, str]]:
        from engine.view import fault_menu

        return fault_menu(self.engine)

    def fault_targets(self) -> dict[str, list[str]]:
        from engine.view import fault_targets

        return fault_targets(self.engine)

    def action_targets(self, actions: list[tuple[str, str]], incident_id: str | None) -> dict[str, str]:
        from engine.view import action_targets

        return action_targets(self.engine, actions, incident_id)

    # ------------------------------------------------------------------ warroom
    def _room_root(self) -> Path:
        if self.data_dir is None:
            raise ValueError("this session has no data directory: a warroom is kept in one")
        return self.data_dir.root

    def warroom_state(self, incident_id: str) -> dict[str, Any]:
        """The incident's warroom as the screen shows it (``room`` None: not opened yet), with
        who is on call and the failed deliveries."""
        from engine.warroom.live import room_state

        room = room_state(self._room_root(), self.engine, incident_id)
        return {"room": room, **self.extras.status(self.engine.now_ms)}

    def warroom_open(self, incident_id: str, *, ic: str | None = None, scribe: str | None = None) -> dict[str, Any]:
        from engine.warroom.live import open_room

        return open_room(self._room_root(), self.engine, incident_id, by=self.actor, ic=ic, scribe=scribe)

    def warroom_change(self, incident_id: str, change: str, **args: Any) -> dict[str, Any]:
        """One change to the room (write, assign, handover, check, close) as this operator."""
        from engine.warroom.live import change_room

        return change_room(self._room_root(), self.engine, incident_id, change, by=self.actor, **args)

    # ------------------------------------------------------------------ operator actions
    def _record(self, kind: str, args: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.add(self.engine.now_ms - self.engine.started_ms, kind, args)

    def _ref(self, incident_id: str) -> dict[str, Any]:
        with self.engine.lock:
            return incident_ref(self.engine, self.engine.get_incident(incident_id))

    def acknowledge(self, incident_id: str) -> Incident:
        with self.engine.lock:
            inc = self.engine.acknowledge(incident_id, self.actor)
            self._record("acknowledge", {"incident": incident_ref(self.engine, inc), "actor": self.actor})
            return inc

    def escalate(self, incident_id: str, reason: str) -> Incident:
        with self.engine.lock:
            inc = self.engine.escalate(incident_id, self.actor, reason)
            self._record("escalate", {"incident": incident_ref(self.engine, inc), "actor": self.actor, "reason": reason})
            return inc

    def note(self, incident_id: str, text: str) -> None:
        with self.engine.lock:
            inc = self.engine.get_incident(incident_id)
            self.engine.note(inc.id, self.actor, text)
            self._record("note", {"incident": incident_ref(self.engine, inc), "actor": self.actor, "text": text})

    def manual_action(self, name: str, target: str, *, incident_id: str | None, params: dict[str, Any], reason: str) -> ActionResult:
        with self.engine.lock:
            ref = self._ref(incident_id) if incident_id else None
            result = self.engine.manual_action(name, target, actor=self.actor, incident_id=incident_id, params=params, reason=reason)
            self._record("manual_action", {"action": name, "target": target, "incident": ref, "params": params, "reason": reason, "actor": self.actor})
            return result

    def _receipt_sink(self) -> Any:
        """The ReceiptSink the engine's events go to (None when this session writes no receipts)."""
        return None

    def operations(self) -> Any:
        """The control socket's :class:`~engine.control.operations.Operations` over this engine:
        the console's kill switch, dry-run and fault injection go through the same operations
        (and so write the same signed ``engine.operator_action`` receipts) as ``ggen engine`` and
        ``ggen chaos`` over the socket. Made on first use."""
        ops = getattr(self, "_operations", None)
        if ops is None:
            from engine.control.operations import Operations
            from engine.control.records import OperatorLog

            sink = self._receipt_sink() if self.receipts else None
            ops = Operations(self.engine, operator_log=OperatorLog(self.engine, sink.append_receipt if sink is not None else None))
            self._operations = ops
        return ops

    def _operate(self, op: str, args: dict[str, Any]) -> Any:
        """One control operation as this operator; its refusal becomes a ValueError for the screen."""
        from engine.control.protocol import OpError

        try:
            return self.operations().handle(op, args)
        except OpError as exc:
            raise ValueError(exc.message) from None

    def inject(self, kind: str, target: str | None) -> Any:
        with self.engine.lock:
            done = self._operate("chaos.inject", {"fault": kind, "target": target, "actor": self.actor})
            fault = next(f for f in self.engine.fleet.faults if f.id == done["id"])
            self._record("inject", {"fault": kind, "target": fault.target, "actor": f"person:{self.actor}"})
            return fault

    def set_kill_switch(self, on: bool) -> None:
        with self.engine.lock:
            self._operate("engine.kill_switch", {"on": on, "actor": self.actor})
            self._record("kill_switch", {"on": on, "actor": self.actor})

    def set_dry_run(self, on: bool) -> None:
        with self.engine.lock:
            self._operate("engine.dry_run", {"on": on, "actor": self.actor})
            self._record("dry_run", {"on": on, "actor": self.actor})


class LiveSession(ConsoleSession):
    """A live engine on the wall clock (``ggen console``)."""

    def __init__(self, live: Any, *, temp_dir: Path | None = None, pending: list[Callable[[Any], Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(live.engine, data_dir=live.data_dir, **kwargs)
        self.live = live
        self.temp_dir = temp_dir
        self.mode = "replay" if self.replay_of else ("scenario" if self.scenario is not None else "live")
        self.extras.services = live.services
        self._pending = list(pending or [])  # services to start after the first frame
        self._services_lock = threading.Lock()
        for svc in live.services:
            self._watch_delivery(svc)

    def _watch_delivery(self, svc: Any) -> None:
        """Notification delivery: show each attempt in the notices feed as it is recorded."""
        if callable(getattr(svc, "subscribe", None)) and hasattr(svc, "feed"):
            svc.subscribe(self._delivery_record)

    def _delivery_record(self, rec: dict[str, Any]) -> None:
        from engine.view import delivery_notice

        self._notices.append(delivery_notice(rec, self.engine.now_ms))

    def start_services(self) -> list[str]:
        """Start what :func:`open_live_session` left for after the first frame (the control socket,
        notification delivery): the console is on screen sooner, and nothing is lost meanwhile:
        delivery starts with every notification the outbox already holds. Returns the problems
        (also shown as notices). Idempotent; a no-op once the session is stopped."""
        problems: list[str] = []
        with self._services_lock:
            pending, self._pending = self._pending, []
            if self._stopped:
                return problems
            live, eng = self.live, self.engine
            for attach_fn in pending:
                before = len(live.services)
                try:
                    with eng.lock:  # no notification slips between the backlog and the listener
                        attach_fn(live)
                        for svc in live.services[before:]:
                            svc.start()
                            self._watch_delivery(svc)
                            if callable(getattr(svc, "submit", None)) and getattr(svc, "outbox", None) is live.outbox:
                                for n in list(live.outbox.items):
                                    svc.submit(n)
                except Exception as exc:  # shown in the console; the engine keeps running
                    del live.services[before:]
                    msg = f"{getattr(attach_fn, '__name__', 'service')} did not start: {type(exc).__name__}: {exc}"
                    problems.append(msg)
                    self.console_notice("console.error", msg)
        return problems

    def _receipt_sink(self) -> Any:
        return getattr(self.live, "sink", None)

    @property
    def speed(self) -> float:
        return self.live.clock.speed

    @property
    def paused(self) -> bool:
        return self.live.paused

    def set_speed(self, speed: float) -> None:
        if not getattr(self.engine.fleet, "simulated", True):
            raise ValueError("this engine watches a real system on the wall clock: its speed cannot change")
        self.live.set_speed(speed)

    def pause(self) -> None:
        self.live.pause()

    def resume(self) -> None:
        self.live.resume()

    @property
    def crash_text(self) -> str | None:
        return self.live.crash_text

    def _stop(self) -> None:
        try:
            with self._services_lock:  # not while services are being started
                self.live.stop()
        finally:
            if self.temp_dir is not None:
                shutil.rmtree(self.temp_dir, ignore_errors=True)


class PacedLocally:
    """Speed and pause kept by the session itself (its own clock moves the engine), for the
    virtual and training sessions; a live session asks its engine instead."""

    _speed: float = 1.0
    _paused: bool = False

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False


class VirtualSession(PacedLocally, ConsoleSession):
    """An engine on a virtual clock that moves only when :meth:`advance` is called.

    With ``data_dir`` the session writes signed receipts to a real ledger there, as a live engine
    does, so the receipts feed has something to verify.
    """

    mode = "virtual"

    def __init__(self, engine: Engine, *, data_dir: DataDir | None = None, actor: str = "operator", speed: float = 1.0, **kwargs: Any) -> None:
        if not isinstance(engine.clock, VirtualClock):
            raise ValueError("a VirtualSession needs an engine on a VirtualClock")
        self._speed = speed
        self._paused = False
        self.ledger: Any = None
        self.sink: Any = None
        self._crash_text: str | None = None
        if data_dir is not None:
            self._open_ledger(engine, data_dir)
        super().__init__(engine, data_dir=data_dir, actor=actor, **kwargs)

    def _open_ledger(self, engine: Engine, data_dir: DataDir) -> None:
        from engine.receipts import KeyStore, Ledger, ReceiptSink

        data_dir.ensure()
        keys = KeyStore.open_or_init(data_dir.keys_dir, now_ms=engine.now_ms)
        self.ledger = Ledger.open(data_dir.ledger_path, keys)
        self.sink = ReceiptSink(self.ledger, keys, engine.policy.policy_hashes, engine.clock)
        engine.subscribe(self.sink)

    def _receipt_sink(self) -> Any:
        return self.sink if self.ledger is not None else None

    @property
    def crash_text(self) -> str | None:
        """What :meth:`advance` caught from the engine (settable, to show a crash in tests)."""
        return self._crash_text

    @crash_text.setter
    def crash_text(self, value: str | None) -> None:
        self._crash_text = value

    def advance(self, ms: int) -> None:
        """Run the engine for ``ms`` of virtual time. An exception from the engine is kept in
        ``crash_text`` (and the engine is not stepped again), as a live engine's thread does."""
        if self.crash_text is not None:
            return
        try:
            self.engine.run_for(ms)
        except Exception as exc:
            self.crash_text = "".join(traceback.format_exception(exc))

    def _stop(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None


def virtual_session(
    *,
    seed: int = 1,
    data_dir: DataDir | None = None,
    fleet_size: int | None = None,
    warmup_ms: int = 0,
    actor: str = "operator",
    start_ms: int | None = None,
    policy: Policy | None = None,
    engine_class: type[ScriptedEngine] = ScriptedEngine,
) -> VirtualSession:
    """A console session on a virtual clock with seeded ids: the same screen on every run."""
    from engine.clock import DEFAULT_VIRTUAL_START_MS
    from engine.core import SeededIds
    from engine.policy.bundle import load_policy

    pol = policy_for(policy or load_policy(), fleet_size, seed)
    engine = engine_class(pol, clock=VirtualClock(DEFAULT_VIRTUAL_START_MS if start_ms is None else start_ms), seed=seed, ids=SeededIds(seed))
    session = VirtualSession(engine, data_dir=data_dir, actor=actor)
    if warmup_ms:
        session.advance(warmup_ms)
    return session


# ============================================================================ opening a live session
def open_live_session(
    data_dir: DataDir,
    *,
    seed: int = 1,
    speed: float = 1.0,
    scenario: str | None = None,
    replay: Path | None = None,
    record: Path | None = None,
    dry_run: bool = False,
    fleet_size: int | None = None,
    actor: str | None = None,
    policy: Policy | None = None,
    engine_class: type[ScriptedEngine] = ScriptedEngine,
    attach: bool = True,
    defer_services: bool = False,
) -> LiveSession:
    """Start the engine for ``ggen console`` and return its session (with ``attach``, also the
    control socket, notification delivery and the roster: see :func:`live_attachments`).

    With ``defer_services`` the control socket and notification delivery are left for
    :meth:`LiveSession.start_services` (the console calls it after its first frame); the ledger
    and the roster are in place before the engine's first tick either way.

    Raises :class:`~engine.live.DataDirLocked` when another engine holds ``data_dir``,
    :class:`ReplayError` for an unplayable replay file, KeyError for an unknown scenario and
    :class:`~engine.policy.loader.PolicyError` for broken policy files. A replay runs in a
    temporary data directory (removed on stop) so it never writes into the real ledger.
    """
    from engine.live import LiveEngine
    from engine.policy.bundle import load_policy

    kill_switch = False
    replay_of = None
    temp_dir: Path | None = None
    sc: "Scenario | None" = None
    script: list[ScriptStep] = []
    if replay is not None:
        from console.tui.recording import load_recording

        rec = load_recording(replay)
        seed, fleet_size, dry_run, kill_switch = rec.seed, rec.fleet_size, rec.dry_run, rec.kill_switch
        if rec.scenario:
            from engine.drill.scenario import load_scenario

            sc = load_scenario(rec.scenario)
        script = recording_script(rec, sc)
        replay_of = str(replay)
        temp_dir = Path(tempfile.mkdtemp(prefix="ggen-replay-"))
        data_dir = DataDir(temp_dir)
    elif scenario is not None:
        from engine.drill.scenario import load_scenario

        sc = load_scenario(scenario)
        script = scenario_script(sc)
    base = policy or load_policy(snapshot=data_dir.policy_snapshot_path)
    pol = policy_for(base, fleet_size, seed)

    def factory(*args: Any, **kwargs: Any) -> Engine:
        return engine_class(*args, script=list(script), **kwargs)

    who = actor or default_actor()
    live = LiveEngine(data_dir, seed=seed, speed=speed, policy=pol, dry_run=dry_run, kill_switch=kill_switch, engine_factory=factory, description=f"ggen console by {who} (seed {seed})")
    pending: list[Callable[[Any], Any]] = []
    try:
        for attach_fn in live_attachments() if attach else []:
            if defer_services and getattr(attach_fn, "__name__", "") in DEFERRABLE:
                pending.append(attach_fn)
            else:
                attach_fn(live)
        live.start()
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    recorder = None
    if record is not None:
        from console.tui.recording import Recorder, Recording

        recorder = Recorder(
            record,
            Recording(seed=seed, scenario=sc.name if sc else None, fleet_size=fleet_size, dry_run=dry_run, kill_switch=kill_switch, started_at=iso_utc(live.engine.started_ms), source="console"),
        )
    return LiveSession(live, temp_dir=temp_dir, actor=who, scenario=sc, recorder=recorder, replay_of=replay_of, pending=pending)


DEFERRABLE = ("attach_control", "attach_delivery")  # may start after the first frame


class Attachment:
    """``attach_<thing>(live)`` of an engine package, imported only when it is attached (the
    delivery and control packages are not needed for the first frame)."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.__name__ = name

    def __call__(self, live: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.__name__)(live)


def live_attachments() -> list[Callable[[Any], Any]]:
    """What a face running the engine attaches before starting it, as ``ggen watch`` does: the
    on-call roster, the control socket (so every other ``ggen`` command reaches this engine) and
    notification delivery. Each is used when its package is present."""
    import importlib.util

    out: list[Callable[[Any], Any]] = []
    for module, name in (("engine.oncall", "attach_roster"), ("engine.control", "attach_control"), ("engine.delivery", "attach_delivery")):
        if importlib.util.find_spec(module) is not None:
            out.append(Attachment(module, name))
    return out
