"""Trainee mode of the console: the main screen over a :class:`~engine.training.session.TraineeSession`.

:class:`TrainingConsoleSession` is the console session the main screen talks to. Its engine is the
trainee session's (virtual clock, training mode); a clock thread advances it at the chosen speed.
Every operator action of the main screen (acknowledge, escalate, mitigate, kill switch, dry-run,
note) goes through the trainee session, so it is recorded and scored; fault injection is refused
and the notices that would give the scenario away (faults injected) are not shown.

:func:`run_trainee_console` runs the app (``ggen train start``) and returns what the trainee did:
the score report, and the knowledge assessment result if they took it from the score screen.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from engine.drill.scenario import Hint, Scenario
from engine.incident import Incident
from engine.mitigate.actuator import ActionResult
from engine.training.session import TraineeRecord, TraineeSession, ref_of

from console.tui.session import ConsoleSession, PacedLocally

HIDDEN_NOTICES = ("fault.injected", "fault.cleared")  # they would name the root cause
CLOCK_STEP_S = 0.05
MAX_TICKS_PER_STEP = 2000


class TrainingConsoleSession(PacedLocally, ConsoleSession):
    """The console's handle on a trainee session, with its own clock thread."""

    mode = "training"

    def __init__(self, trainee: TraineeSession, *, speed: float = 1.0) -> None:
        self.trainee = trainee
        self._speed = speed
        self._paused = False
        self._crash: str | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(trainee.engine, data_dir=None, actor=trainee.trainee, scenario=trainee.scenario, receipts=False)

    # ------------------------------------------------------------------ the clock
    def start(self) -> None:
        """Start the clock thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ggen-training-clock", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        owed_ms = 0.0
        tick = self.engine.tick_ms
        while not self._halt.wait(CLOCK_STEP_S):
            now = time.monotonic()
            dt, last = now - last, now
            if self._paused or self.trainee.over:
                continue
            owed_ms += dt * self._speed * 1000.0
            n = 0
            try:
                while owed_ms >= tick and n < MAX_TICKS_PER_STEP and not self.trainee.over:
                    with self.engine.lock:
                        self.trainee.step()
                    owed_ms -= tick
                    n += 1
            except Exception as exc:  # shown by the console's crash screen, as a live engine's would be
                self._crash = "".join(traceback.format_exception(exc))
                return
            if n >= MAX_TICKS_PER_STEP:
                owed_ms = 0.0  # the machine cannot keep up with this speed: drop the backlog

    def advance(self, ms: int) -> None:
        """Run ``ms`` of scenario time now (tests and snapshots drive the clock by hand)."""
        with self.engine.lock:
            self.trainee.advance(ms)

    @property
    def crash_text(self) -> str | None:
        return self._crash

    @property
    def title(self) -> str:
        return f"training {self.trainee.scenario.name}"

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def drain_notices(self) -> list[dict[str, Any]]:
        return [n for n in super().drain_notices() if n.get("kind") not in HIDDEN_NOTICES]

    # ------------------------------------------------------------------ the trainee's actions
    def _checked(self, rec: TraineeRecord) -> TraineeRecord:
        if not rec.ok:
            raise ValueError(rec.detail)
        return rec

    def _incident(self, incident_id: str) -> Incident:
        with self.engine.lock:
            return self.engine.get_incident(incident_id)

    def acknowledge(self, incident_id: str) -> Incident:
        inc = self._incident(incident_id)
        with self.engine.lock:
            self._checked(self.trainee.acknowledge(incident_id=inc.id))
        return inc

    def escalate(self, incident_id: str, reason: str) -> Incident:
        inc = self._incident(incident_id)
        with self.engine.lock:
            self._checked(self.trainee.escalate(reason=reason, incident_id=inc.id))
        return inc

    def note(self, incident_id: str, text: str) -> None:
        inc = self._incident(incident_id)
        with self.engine.lock:
            self._checked(self.trainee.note(text, incident_id=inc.id))

    def manual_action(self, name: str, target: str, *, incident_id: str | None, params: dict[str, Any], reason: str) -> ActionResult:
        with self.engine.lock:
            rec = self.trainee.act(name, target, params, reason=reason, incident_id=incident_id)
        return ActionResult(rec.ok, rec.detail)

    def inject(self, kind: str, target: str | None) -> Any:
        raise ValueError("no fault injection while training: the scenario brings its own")

    def set_kill_switch(self, on: bool) -> None:
        with self.engine.lock:
            self.trainee.set_kill_switch(on)

    def set_dry_run(self, on: bool) -> None:
        with self.engine.lock:
            self.trainee.set_dry_run(on)

    def classify(self, incident_id: str, severity: str) -> str:
        with self.engine.lock:
            return self._checked(self.trainee.classify(severity, incident_id=incident_id)).detail

    def choose_runbook(self, incident_id: str, runbook: str) -> str:
        with self.engine.lock:
            return self._checked(self.trainee.choose_runbook(runbook, incident_id=incident_id)).detail

    def hint(self) -> Hint | None:
        with self.engine.lock:
            return self.trainee.hint()

    def decisions(self, incident_id: str | None) -> dict[str, Any]:
        """What the trainee has decided about an incident so far (for the banner)."""
        with self.engine.lock:
            inc = self.engine.incidents.get(incident_id) if incident_id else None
            if inc is None:
                return {}
            sev = self.trainee.classified.get(inc.id)
            rb = self.trainee.runbook_choice.get(inc.id)
            return {
                "incident": ref_of(inc),
                "acknowledged": inc.acknowledged_by == self.trainee.trainee,
                "severity": sev[-1][1] if sev else None,
                "runbook": rb[-1][1] if rb else None,
                "escalated": inc.escalated,
            }

    def score(self) -> Any:
        from engine.training.score import score

        with self.engine.lock:
            return score(self.trainee)


@dataclass
class TrainingOutcome:
    """What a trainee console session produced."""

    report: Any | None = None  # ScoreReport, once the trainee finished (or time ran out)
    quiz: Any | None = None  # QuizResult, when the assessment was taken from the score screen


def training_app(scenario: Scenario, *, trainee: str, seed: int = 1, speed: float = 1.0, start_clock: bool = True) -> Any:
    """The console app in trainee mode, ready to run (``start_clock`` False: tests drive time)."""
    from console.tui.screens.training import TrainingApp

    session = TrainingConsoleSession(TraineeSession(scenario, trainee=trainee, seed=seed), speed=speed)
    if start_clock:
        session.start()
    return TrainingApp(session)


def run_trainee_console(scenario: Scenario, *, trainee: str, seed: int = 1, speed: float = 1.0) -> TrainingOutcome:
    """Run the trainee console until the trainee quits; return the report (and quiz) they got."""
    app = training_app(scenario, trainee=trainee, seed=seed, speed=speed)
    try:
        app.run()
    finally:
        app.session.stop()
    return app.outcome
