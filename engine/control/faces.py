"""Operations for a console attached to this engine over the control socket (``ggen console
--attach``, and every browser of ``ggen console --serve``).

The attached console reads the same :class:`~engine.view.ConsoleView` the in-process
console reads (``console.view``, with a cursor over the engine's notices so each console sees
every notice once), and sends the operator's actions as operations: acknowledge, escalate, note,
a manual mitigation (through the safety governor), the clock, the warroom. Fault injection, the
kill switch and dry-run are the existing ``chaos.inject``, ``engine.kill_switch`` and
``engine.dry_run``. Each action is recorded by the engine with the person as the actor, exactly
as when the console runs the engine itself.
"""
from __future__ import annotations

import os
from typing import Any, Literal

import orjson
from pydantic import Field

from engine.control.operations import Args, NoArgs
from engine.control.protocol import BAD_ARGUMENT, NOT_FOUND, REFUSED, OpError
from engine.view import (
    SPARK_SAMPLES,
    NoticeFeed,
    ViewExtras,
    action_targets,
    fault_menu,
    fault_targets,
    incident_events,
    incident_facts,
    read_engine_view,
    similar_query,
    view_to_json,
)

ACTOR = Field(default="operator", min_length=1, max_length=200)


class ViewArgs(Args):
    selected: str | None = None
    spark_samples: int = Field(default=SPARK_SAMPLES, ge=0, le=1000)
    notices_after: int | None = Field(default=None, ge=0)


class IncidentArgs(Args):
    incident_id: str = Field(min_length=1)


class AckArgs(IncidentArgs):
    actor: str = ACTOR


class EscalateArgs(IncidentArgs):
    actor: str = ACTOR
    reason: str = Field(default="escalated by a person", max_length=2000)


class NoteArgs(IncidentArgs):
    actor: str = ACTOR
    text: str = Field(min_length=1, max_length=10_000)


class ManualArgs(Args):
    action: str = Field(min_length=1)
    target: str = Field(min_length=1)
    incident_id: str | None = None
    params: dict[str, Any] = {}
    reason: str = Field(default="", max_length=2000)
    actor: str = ACTOR


class TargetsArgs(Args):
    actions: list[tuple[str, str]]
    incident_id: str | None = None


class ClockArgs(Args):
    speed: float | None = Field(default=None, gt=0, le=100_000)
    paused: bool | None = None
    actor: str = ACTOR


class RoomOpenArgs(IncidentArgs):
    actor: str = ACTOR
    ic: str | None = Field(default=None, max_length=200)
    scribe: str | None = Field(default=None, max_length=200)


class RoomChangeArgs(IncidentArgs):
    change: Literal["write", "assign", "handover", "check", "close"]
    actor: str = ACTOR
    text: str = Field(default="", max_length=10_000)
    kind: str = "note"
    role: str = ""
    person: str = Field(default="", max_length=200)
    item: str = ""
    detail: str = Field(default="", max_length=2000)


def _not_found(exc: Exception, arg: str = "incident_id") -> OpError:
    return OpError(NOT_FOUND, str(exc.args[0]) if exc.args else str(exc), arg)


class Faces:
    """The attached consoles' operations over one :class:`~engine.control.operations.Operations`."""

    def __init__(self, ops: Any) -> None:
        self.ops = ops
        self.engine = ops.engine
        self.live = ops.live
        self._feed: NoticeFeed | None = None
        self._extras = ViewExtras(self.engine, self.live.services if self.live is not None else [])

    def table(self) -> dict[str, tuple[type[Args], Any]]:
        return {
            "console.hello": (NoArgs, self.hello),
            "console.view": (ViewArgs, self.view),
            "console.menu": (NoArgs, self.menu),
            "console.targets": (TargetsArgs, self.targets),
            "console.manual_action": (ManualArgs, self.manual_action),
            "engine.clock": (ClockArgs, self.clock),
            "incident.get": (IncidentArgs, self.incident),
            "incident.acknowledge": (AckArgs, self.acknowledge),
            "incident.escalate": (EscalateArgs, self.escalate),
            "incident.note": (NoteArgs, self.note),
            "incident.events": (IncidentArgs, self.events),
            "incident.facts": (IncidentArgs, self.facts),
            "incident.similar_query": (IncidentArgs, self.similar),
            "warroom.state": (IncidentArgs, self.room_state),
            "warroom.open": (RoomOpenArgs, self.room_open),
            "warroom.change": (RoomChangeArgs, self.room_change),
        }

    # ------------------------------------------------------------------ reading
    def _clock(self) -> tuple[float, bool]:
        clock = self.engine.clock
        return float(getattr(clock, "speed", 1.0) or 1.0), bool(getattr(clock, "paused", False))

    @property
    def feed(self) -> NoticeFeed:
        if self._feed is None:
            self._feed = NoticeFeed(self.engine)
        if self.live is not None:
            self._feed.watch_deliveries(self.live.services)  # delivery may start after the socket
        return self._feed

    def hello(self, a: NoArgs) -> dict[str, Any]:
        eng = self.engine
        live = self.live
        speed, paused = self._clock()
        return {
            "pid": os.getpid(),
            "description": getattr(live, "description", None) or "ggen engine",
            "data_dir": str(live.data_dir.root) if live is not None else None,
            "fleet": eng.policy.fleet.fleet.name,
            "seed": eng.seed,
            "started_ms": eng.started_ms,
            "now_ms": eng.now_ms,
            "speed": speed,
            "paused": paused,
            "receipts": bool(live is not None and getattr(live, "sink", None) is not None),
        }

    def view(self, a: ViewArgs) -> Any:
        """The console's view (pre-encoded: NaN travels as null) and the next notice cursor."""
        notices, cursor = self.feed.since(a.notices_after)
        speed, paused = self._clock()
        live = self.live
        crash = getattr(live, "crash_text", None) if live is not None else None
        desc = getattr(live, "description", None) or "ggen engine"
        v = read_engine_view(self.engine, a.selected, a.spark_samples, speed=speed, paused=paused, mode="attached", title=desc, crash=crash, notices=notices, extras=self._extras)
        return {"view": orjson.Fragment(view_to_json(v)), "cursor": cursor}

    def menu(self, a: NoArgs) -> dict[str, Any]:
        return {"faults": fault_menu(self.engine), "targets": fault_targets(self.engine)}

    def targets(self, a: TargetsArgs) -> dict[str, str]:
        return action_targets(self.engine, [(n, k) for n, k in a.actions], a.incident_id)

    def incident(self, a: IncidentArgs) -> dict[str, Any]:
        """One incident's summary (a unique prefix of its id is enough)."""
        eng = self.engine
        with eng.lock:
            try:
                return eng.get_incident(a.incident_id).summary()
            except (KeyError, ValueError) as exc:
                raise _not_found(exc) from None

    def events(self, a: IncidentArgs) -> dict[str, Any]:
        got = incident_events(self.engine, a.incident_id)
        if got is None:
            raise OpError(NOT_FOUND, f"no incident {a.incident_id}", "incident_id")
        row, events = got
        return {"row": row, "events": events}

    def facts(self, a: IncidentArgs) -> dict[str, Any]:
        try:
            return incident_facts(self.engine, a.incident_id)
        except (KeyError, ValueError) as exc:
            raise _not_found(exc) from None

    def similar(self, a: IncidentArgs) -> dict[str, Any]:
        try:
            itype, signals, exclude = similar_query(self.engine, a.incident_id)
        except (KeyError, ValueError) as exc:
            raise _not_found(exc) from None
        return {"type": itype, "signals": signals, "exclude": exclude}

    # ------------------------------------------------------------------ actions
    def _incident_call(self, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            inc = fn(*args)
        except KeyError as exc:
            raise _not_found(exc) from None
        except ValueError as exc:  # already acknowledged, resolved, escalated ...
            raise OpError(REFUSED, str(exc), "incident_id") from None
        return inc.summary()

    def acknowledge(self, a: AckArgs) -> dict[str, Any]:
        return self._incident_call(self.engine.acknowledge, a.incident_id, a.actor)

    def escalate(self, a: EscalateArgs) -> dict[str, Any]:
        return self._incident_call(self.engine.escalate, a.incident_id, a.actor, a.reason)

    def note(self, a: NoteArgs) -> dict[str, Any]:
        eng = self.engine
        with eng.lock:
            try:
                inc = eng.get_incident(a.incident_id)
            except (KeyError, ValueError) as exc:
                raise _not_found(exc) from None
            ev = eng.note(inc.id, a.actor, a.text)
            return {"incident_id": inc.id, "seq": ev.seq, "kind": ev.kind}

    def manual_action(self, a: ManualArgs) -> dict[str, Any]:
        eng = self.engine
        with eng.lock:
            if a.incident_id is not None:
                try:
                    eng.get_incident(a.incident_id)
                except (KeyError, ValueError) as exc:
                    raise _not_found(exc) from None
            try:
                result = eng.manual_action(a.action, a.target, actor=a.actor, incident_id=a.incident_id, params=a.params or None, reason=a.reason)
            except (KeyError, ValueError) as exc:
                raise OpError(BAD_ARGUMENT, str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc), "target") from None
        return {"ok": bool(result.ok), "detail": str(result.detail)}

    def clock(self, a: ClockArgs) -> dict[str, Any]:
        """Speed and pause of a live engine's clock (everyone watching it sees the change)."""
        live = self.live
        if live is None:
            raise OpError(REFUSED, "this engine's clock is not a live clock (it moves only when its owner steps it)")
        if a.speed is not None:
            if not getattr(self.engine.fleet, "simulated", True):
                raise OpError(REFUSED, "this engine watches a real system on the wall clock: its speed cannot change", "speed")
            live.set_speed(a.speed)
        if a.paused is True:
            live.pause()
        elif a.paused is False:
            live.resume()
        if a.speed is not None or a.paused is not None:
            what = ", ".join(x for x in (f"speed ×{a.speed:g}" if a.speed is not None else "", {True: "paused", False: "resumed"}.get(a.paused, "")) if x)  # type: ignore[arg-type]
            self.engine.notice("clock", f"{a.actor}: {what}", actor=a.actor)
        speed, paused = self._clock()
        return {"speed": speed, "paused": paused}

    # ------------------------------------------------------------------ the warroom
    def _root(self) -> Any:
        if self.live is None:
            raise OpError(REFUSED, "this engine has no data directory: a warroom is kept in one")
        return self.live.data_dir.root

    def _room(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from engine.warroom import WarroomError

        try:
            return fn(*args, **kwargs)
        except WarroomError as exc:
            raise OpError(REFUSED, str(exc)) from None

    def room_state(self, a: IncidentArgs) -> dict[str, Any]:
        """The room (None: not opened yet), and who is on call and what failed to deliver."""
        from engine.warroom.live import room_state

        room = self._room(room_state, self._root(), self.engine, a.incident_id)
        return {"room": room, **self._extras.status(self.engine.now_ms)}

    def room_open(self, a: RoomOpenArgs) -> dict[str, Any]:
        from engine.warroom.live import open_room

        return self._room(open_room, self._root(), self.engine, a.incident_id, by=a.actor, ic=a.ic, scribe=a.scribe)

    def room_change(self, a: RoomChangeArgs) -> dict[str, Any]:
        from engine.warroom.live import change_room

        return self._room(change_room, self._root(), self.engine, a.incident_id, a.change, by=a.actor, text=a.text, kind=a.kind, role=a.role, person=a.person, item=a.item, detail=a.detail)


def operations(ops: Any) -> dict[str, tuple[type[Args], Any]]:
    """The attached consoles' operations, for :class:`~engine.control.operations.Operations`."""
    return Faces(ops).table()
