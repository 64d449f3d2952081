"""A console attached to an engine that already runs (``ggen console --attach``).

:class:`AttachedSession` is a console session whose engine lives in another process (``ggen
console`` or ``ggen watch`` on the same data directory): it reads the view and sends every
operator action through the engine's control socket (:mod:`engine.control.faces`), and reads
the receipts, timelines and PIRs from the shared data directory. Many consoles can attach to one
engine: that is how a warroom watches one incident together (``ggen console --serve``).

Quitting an attached console leaves the engine running. If the engine stops, the console says
so (the crash screen, with why) and keeps trying: it picks the engine up again if one comes back.
"""
from __future__ import annotations

import threading
from collections import deque
from types import SimpleNamespace
from typing import Any

from engine.control.client import ControlClient, ControlError, NoEngine
from engine.view import SPARK_SAMPLES, ConsoleView, EventRow, IncidentRow, view_from_dict
from engine.datadir import DataDir
from engine.mitigate.actuator import ActionResult


class EngineGone(RuntimeError):
    """The engine this console was attached to no longer answers."""


class AttachedSession:
    """The console's handle on an engine in another process, through its control socket."""

    mode = "attached"
    scenario = None
    recorder = None
    replay_of = None

    def __init__(self, data_dir: DataDir, *, actor: str, timeout: float = 15.0) -> None:
        self.data_dir = data_dir
        self.actor = actor
        self.client = ControlClient(data_dir.control_socket_path, timeout=timeout)
        self.hello: dict[str, Any] = self.client.call("console.hello")  # NoEngine when none runs
        self.receipts = True  # the ledger is in the shared data directory
        self._policy: Any = None
        self._cursor: int | None = None
        self._cursor_lock = threading.Lock()
        self._local: deque[dict[str, Any]] = deque(maxlen=1000)
        self._last: ConsoleView | None = None
        self._lost: str | None = None
        self._stopped = False

    # ------------------------------------------------------------------ state
    @property
    def title(self) -> str:
        return f"attached to pid {self.hello.get('pid')}: {self.hello.get('description')}"

    @property
    def policy(self) -> Any:
        """The policy data (runbooks, severities) for drafting PIRs on this side."""
        if self._policy is None:
            from engine.policy.bundle import load_policy

            self._policy = load_policy()
        return self._policy

    @property
    def speed(self) -> float:
        return self._last.speed if self._last is not None else float(self.hello.get("speed") or 1.0)

    @property
    def paused(self) -> bool:
        return self._last.paused if self._last is not None else bool(self.hello.get("paused"))

    @property
    def now_ms(self) -> int:
        return self._last.now_ms if self._last is not None else int(self.hello.get("now_ms") or 0)

    @property
    def crash_text(self) -> str | None:
        if self._lost is not None:
            return self._lost
        return self._last.crash if self._last is not None else None

    def script_progress(self) -> None:
        return None

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Detach (the engine keeps running for everyone else)."""
        self._stopped = True

    def console_notice(self, kind: str, text: str, **data: Any) -> None:
        self._local.append({"at_ms": self.now_ms, "kind": kind, "text": text, **data})

    def drain_notices(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self._local.popleft())
            except IndexError:
                return out

    # ------------------------------------------------------------------ talking to the engine
    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        """One operation; the engine's refusal comes back as ValueError (shown as REFUSED), a
        missing engine as :class:`EngineGone`."""
        try:
            return self.client.call(op, args)
        except NoEngine as exc:
            raise EngineGone(str(exc)) from None
        except ControlError as exc:
            raise ValueError(exc.message) from None
        except OSError as exc:
            raise EngineGone(f"the engine's control socket failed: {exc}") from None

    def read_view(self, selected_id: str | None = None, spark_samples: int | None = None) -> ConsoleView:
        """The engine's view over the socket, with this console's notices merged in. When the
        engine is gone the last view stays on screen, marked as a crash."""
        with self._cursor_lock:
            args = {"selected": selected_id, "spark_samples": SPARK_SAMPLES if spark_samples is None else spark_samples, "notices_after": self._cursor}
            try:
                got = self.client.call("console.view", args)
            except (NoEngine, ControlError, OSError) as exc:
                return self._gone(exc)
            self._cursor = got["cursor"]
        view = view_from_dict(got["view"])
        if self._lost is not None:
            self._lost = None
            self.console_notice("console", "the engine answers again")
        view.notices = view.notices + self.drain_notices()
        self._last = view
        return view

    def _gone(self, exc: Exception) -> ConsoleView:
        why = str(exc) or type(exc).__name__
        self._lost = (
            f"The engine on {self.data_dir.root} no longer answers on its control socket ({why}).\n"
            "This console was attached to it and keeps trying; start `ggen console` or `ggen watch` on the same data directory to go on."
        )
        if self._last is None:
            raise EngineGone(why)
        self._last.notices = self.drain_notices()
        self._last.crash = self._lost
        return self._last

    def incident_events(self, incident_id: str) -> tuple[IncidentRow, list[EventRow]] | None:
        try:
            got = self.call("incident.events", {"incident_id": incident_id})
        except ValueError:
            return None
        return IncidentRow(**got["row"]), [EventRow(**e) for e in got["events"]]

    def incident_facts(self, incident_id: str) -> dict[str, Any]:
        return self.call("incident.facts", {"incident_id": incident_id})  # type: ignore[no-any-return]

    def similar_query(self, incident_id: str) -> tuple[str, dict[str, Any], list[str]]:
        got = self.call("incident.similar_query", {"incident_id": incident_id})
        return got["type"], got["signals"], got["exclude"]

    def fault_menu(self) -> list[tuple[str, str, str, str]]:
        return [tuple(x) for x in self.call("console.menu")["faults"]]  # type: ignore[misc]

    def fault_targets(self) -> dict[str, list[str]]:
        return self.call("console.menu")["targets"]  # type: ignore[no-any-return]

    def action_targets(self, actions: list[tuple[str, str]], incident_id: str | None) -> dict[str, str]:
        return self.call("console.targets", {"actions": [list(a) for a in actions], "incident_id": incident_id})  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ speed and pause (shared by everyone watching)
    def set_speed(self, speed: float) -> None:
        self.call("engine.clock", {"speed": speed, "actor": self.actor})
        if self._last is not None:
            self._last.speed = speed

    def pause(self) -> None:
        self.call("engine.clock", {"paused": True, "actor": self.actor})
        if self._last is not None:
            self._last.paused = True

    def resume(self) -> None:
        self.call("engine.clock", {"paused": False, "actor": self.actor})
        if self._last is not None:
            self._last.paused = False

    # ------------------------------------------------------------------ operator actions
    def acknowledge(self, incident_id: str) -> Any:
        return SimpleNamespace(**self.call("incident.acknowledge", {"incident_id": incident_id, "actor": self.actor}))

    def escalate(self, incident_id: str, reason: str) -> Any:
        return SimpleNamespace(**self.call("incident.escalate", {"incident_id": incident_id, "actor": self.actor, "reason": reason}))

    def note(self, incident_id: str, text: str) -> None:
        self.call("incident.note", {"incident_id": incident_id, "actor": self.actor, "text": text})

    def manual_action(self, name: str, target: str, *, incident_id: str | None, params: dict[str, Any], reason: str) -> ActionResult:
        got = self.call("console.manual_action", {"action": name, "target": target, "incident_id": incident_id, "params": params, "reason": reason, "actor": self.actor})
        return ActionResult(bool(got["ok"]), str(got["detail"]))

    def inject(self, kind: str, target: str | None) -> Any:
        return SimpleNamespace(**self.call("chaos.inject", {"fault": kind, "target": target, "actor": self.actor}))

    def set_kill_switch(self, on: bool) -> None:
        self.call("engine.kill_switch", {"on": on, "actor": self.actor, "reason": "from an attached console"})

    def set_dry_run(self, on: bool) -> None:
        self.call("engine.dry_run", {"on": on, "actor": self.actor, "reason": "from an attached console"})

    # ------------------------------------------------------------------ warroom
    def warroom_state(self, incident_id: str) -> dict[str, Any]:
        return self.call("warroom.state", {"incident_id": incident_id})  # type: ignore[no-any-return]

    def warroom_open(self, incident_id: str, *, ic: str | None = None, scribe: str | None = None) -> dict[str, Any]:
        return self.call("warroom.open", {"incident_id": incident_id, "actor": self.actor, "ic": ic, "scribe": scribe})  # type: ignore[no-any-return]

    def warroom_change(self, incident_id: str, change: str, **args: Any) -> dict[str, Any]:
        return self.call("warroom.change", {"incident_id": incident_id, "change": change, "actor": self.actor, **args})  # type: ignore[no-any-return]


def attach_session(data_dir: DataDir, *, actor: str) -> AttachedSession:
    """Attach to the engine running on ``data_dir``; raises NoEngine when none answers."""
    return AttachedSession(data_dir, actor=actor)
