"""A trainee's session on one scenario.

The engine runs the scenario on a virtual clock in training mode (it detects, classifies and pages,
but takes no action of its own), unless the scenario's ``[training] automation = true`` lets the
runbooks run so the trainee can see, and stop, automation that makes things worse. The trainee
acknowledges, classifies, chooses a runbook, acts through ``Engine.manual_action`` (so the safety
governor applies), escalates, flips the kill switch or dry-run, and asks for hints. Every call is
recorded with its time and outcome; :func:`engine.training.score.score` turns the session into a
:class:`~engine.training.score.ScoreReport`.

The console's trainee mode and the headless ``ggen train run`` drive the same class: the console
advances it from a timer, :func:`run_answers` from an answers file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pydantic import Field

from engine.drill.runner import start_engine
from engine.drill.scenario import Hint, Scenario, TraineeStep, UnsafeAction
from engine.incident import RESOLVED, Incident
from engine.policy.bundle import Policy
from engine.policy.loader import StrictModel, load_model

MAX_TRAINEE_NAME = 64


class TrainingError(ValueError):
    """A training request that cannot be carried out (no [training] table, bad trainee name)."""


def check_trainee(name: str) -> str:
    """A trainee name: 1-64 printable characters, no control characters, trimmed."""
    n = (name or "").strip()
    if not n:
        raise TrainingError("trainee name is empty")
    if len(n) > MAX_TRAINEE_NAME:
        raise TrainingError(f"trainee name is longer than {MAX_TRAINEE_NAME} characters")
    bad = [c for c in n if ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0]
    if bad:
        raise TrainingError(f"trainee name contains a control character ({ord(bad[0]):#04x})")
    return n


@dataclass
class TraineeRecord:
    """One thing the trainee did, when, and what came of it."""

    at_ms: int
    offset_s: float  # since the scenario start
    do: str
    incident: str | None  # type@entity of the incident it concerned
    incident_id: str | None
    args: dict[str, Any]
    ok: bool
    detail: str
    unsafe: str | None = None  # why the action was unsafe (scenario list or governor refusal)
    reached: bool = True  # an action that got to the actuator (applied, or declined by it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset_s": round(self.offset_s, 3),
            "do": self.do,
            "incident": self.incident,
            "incident_id": self.incident_id,
            "args": self.args,
            "ok": self.ok,
            "detail": self.detail,
            "unsafe": self.unsafe,
        }


class AnswersFile(StrictModel):
    """A scripted trainee (``ggen train run SCENARIO --answers FILE``): steps at virtual times."""

    trainee: str | None = None
    scenario: str | None = None  # checked against the scenario being run, when given
    seed: int | None = Field(default=None, ge=0)
    steps: list[TraineeStep] = Field(min_length=1)


def load_answers(path: Path) -> AnswersFile:
    """Read an answers file (.toml or .json); errors name the file and the field."""
    return load_model(Path(path), AnswersFile)


def ref_of(inc: Incident) -> str:
    return f"{inc.type}@{inc.entity}"


class TraineeSession:
    """One trainee on one scenario, on a virtual clock."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        trainee: str,
        seed: int = 1,
        policy: Policy | None = None,
        extra_unsafe: Iterable[UnsafeAction] | None = None,
    ) -> None:
        """``extra_unsafe``: actions unsafe in every scenario (default: runbooks/training/training.toml)."""
        if scenario.training is None:
            raise TrainingError(f"scenario {scenario.name!r} has no [training] table: it is a drill, not a training scenario")
        self.scenario = scenario
        self.spec = scenario.training
        self.trainee = check_trainee(trainee)
        self.seed = seed
        if extra_unsafe is None:
            from engine.training.config import load_training_config

            extra_unsafe = load_training_config().unsafe
        self.unsafe_rules: list[UnsafeAction] = list(self.spec.unsafe) + list(extra_unsafe)
        self.engine, self._play_faults = start_engine(scenario, seed, policy, training=not self.spec.automation)
        self.policy = self.engine.policy
        self.t0 = self.engine.now_ms
        self.end_ms = self.t0 + scenario.scenario.run_s * 1000
        self.records: list[TraineeRecord] = []
        self.classified: dict[str, list[tuple[int, str]]] = {}
        self.runbook_choice: dict[str, list[tuple[int, str]]] = {}
        self.hints_used: list[int] = []
        self.kill_switch_on_ms: int | None = None
        self.dry_run_on_ms: int | None = None
        self._play_faults()

    # ------------------------------------------------------------------ time
    @property
    def now_ms(self) -> int:
        return self.engine.now_ms

    @property
    def offset_s(self) -> float:
        """Seconds since the scenario's fault timeline started."""
        return (self.engine.now_ms - self.t0) / 1000

    @property
    def over(self) -> bool:
        return self.engine.now_ms >= self.end_ms

    def step(self) -> None:
        """One engine tick (and any scenario fault now due)."""
        e = self.engine
        e.clock.sleep_until(e.now_ms + e.tick_ms)  # type: ignore[attr-defined]
        e.step()
        self._play_faults()

    def advance(self, ms: int) -> None:
        """Run up to ``ms`` of virtual time (stops at the scenario's end)."""
        target = min(self.end_ms, self.engine.now_ms + ms)
        while self.engine.now_ms + self.engine.tick_ms <= target:
            self.step()

    # ------------------------------------------------------------------ incidents
    def default_ref(self) -> str:
        return self.spec.incidents[0].ref

    def find(self, ref: str | None = None) -> Incident | None:
        """The incident ``ref`` (type, or type@entity) names: the earliest open one, else the
        latest detected; None when none has been detected yet."""
        kind, _, entity = (ref or self.default_ref()).partition("@")
        with self.engine.lock:
            cands = [i for i in self.engine.incidents.values() if i.type == kind and (not entity or i.entity == entity)]
        if not cands:
            return None
        open_ = [i for i in cands if i.open]
        if open_:
            return min(open_, key=lambda i: i.detected_at_ms)
        return max(cands, key=lambda i: i.detected_at_ms)

    def _pick(self, ref: str | None, incident_id: str | None) -> Incident | None:
        """The incident an action is about: ``incident_id`` when given (the console's selection),
        else what ``ref`` names."""
        if incident_id is not None:
            with self.engine.lock:
                return self.engine.incidents.get(incident_id)
        return self.find(ref)

    def first(self, ref: str) -> Incident | None:
        """The first incident ever detected that ``ref`` names (what the score judges)."""
        kind, _, entity = ref.partition("@")
        with self.engine.lock:
            cands = [i for i in self.engine.incidents.values() if i.type == kind and (not entity or i.entity == entity)]
        return min(cands, key=lambda i: i.detected_at_ms) if cands else None

    def page_ms(self, ref: str | None = None) -> int | None:
        """When the trainee was paged for ``ref`` (its detection), or None if not yet."""
        inc = self.find(ref)
        return None if inc is None else inc.detected_at_ms

    def settled(self) -> bool:
        """Every expected incident has been detected and is over for the trainee: resolved, or
        escalated when it cannot be resolved here."""
        for r in self.spec.incidents:
            inc = self.first(r.ref)
            if inc is None:
                return False
            if inc.state == RESOLVED:
                continue
            if not r.resolve and inc.escalated:
                continue
            return False
        return True

    # ------------------------------------------------------------------ recording
    def _record(self, do: str, inc: Incident | None, args: dict[str, Any], ok: bool, detail: str, unsafe: str | None = None, reached: bool = True) -> TraineeRecord:
        rec = TraineeRecord(self.engine.now_ms, self.offset_s, do, ref_of(inc) if inc else None, inc.id if inc else None, args, ok, detail, unsafe, reached)
        self.records.append(rec)
        return rec

    def _missing(self, do: str, ref: str | None, args: dict[str, Any]) -> TraineeRecord:
        name = ref or self.default_ref()
        return self._record(do, None, dict(args, incident=name), False, f"no {name} incident has been detected (yet)")

    # ------------------------------------------------------------------ the trainee's actions
    def acknowledge(self, ref: str | None = None, *, incident_id: str | None = None) -> TraineeRecord:
        inc = self._pick(ref, incident_id)
        if inc is None:
            return self._missing("acknowledge", ref, {})
        with self.engine.lock:
            already = inc.acknowledged
            self.engine.acknowledge(inc.id, self.trainee)
        if already:
            return self._record("acknowledge", inc, {}, False, f"already acknowledged by {inc.acknowledged_by}")
        waited = (inc.acknowledged_at_ms or self.engine.now_ms) - inc.detected_at_ms
        return self._record("acknowledge", inc, {}, True, f"acknowledged {waited / 1000:.0f} s after the page")

    def classify(self, severity: str, ref: str | None = None, *, incident_id: str | None = None) -> TraineeRecord:
        inc = self._pick(ref, incident_id)
        if inc is None:
            return self._missing("classify", ref, {"severity": severity})
        self.classified.setdefault(inc.id, []).append((self.engine.now_ms, severity))
        self.engine.note(inc.id, self.trainee, f"trainee classifies {severity}", training="classify", severity=severity)
        return self._record("classify", inc, {"severity": severity}, True, f"classified {severity}")

    def choose_runbook(self, runbook: str, ref: str | None = None, *, incident_id: str | None = None) -> TraineeRecord:
        inc = self._pick(ref, incident_id)
        if inc is None:
            return self._missing("runbook", ref, {"runbook": runbook})
        if runbook not in self.policy.runbooks:
            return self._record("runbook", inc, {"runbook": runbook}, False, f"no runbook {runbook!r} (known: {', '.join(sorted(self.policy.runbooks))})")
        self.runbook_choice.setdefault(inc.id, []).append((self.engine.now_ms, runbook))
        self.engine.note(inc.id, self.trainee, f"trainee follows runbook {runbook}", training="runbook", runbook=runbook)
        return self._record("runbook", inc, {"runbook": runbook}, True, f"runbook {runbook}")

    def unsafe_reason(self, action: str, target: str, params: dict[str, Any] | None = None) -> str | None:
        """Why the scenario (or the training settings) mark this action unsafe now, or None."""
        for u in self.unsafe_rules:
            if u.action != action or (u.target is not None and u.target != target):
                continue
            if u.when == "dependency_unhealthy" and not self._closes_onto_failure(action, target, params or {}):
                continue
            return u.reason
        return None

    def _closes_onto_failure(self, action: str, target: str, params: dict[str, Any]) -> bool:
        """Would this close a breaker whose dependency is failing right now?"""
        from engine.mitigate.breaker import CLOSED

        if action == "override_breaker" and int(params.get("state", CLOSED)) != CLOSED:
            return False
        f = self.engine.fleet
        if "->" in target:
            names = [target] if target in f.breakers else []
        else:
            names = [b.name for b in f.breaker_for(target)] if target in f.services else []
        return any(self.engine.signals("circuit", n).get("healthy", 1.0) < 1.0 for n in names)

    def act(self, action: str, target: str, params: dict[str, Any] | None = None, ref: str | None = None, reason: str = "", *, incident_id: str | None = None) -> TraineeRecord:
        """A mitigation through the engine (and so through the safety governor). It is applied even
        when the scenario marks it unsafe: the trainee sees what it does, and the score says why it
        was wrong."""
        inc = self._pick(ref, incident_id)
        params = dict(params or {})
        args = {"action": action, "target": target, "params": params}
        with self.engine.lock:
            unsafe = self.unsafe_reason(action, target, params)
        attach = inc is not None and inc.state != RESOLVED
        try:
            with self.engine.lock:
                result = self.engine.manual_action(action, target, actor=self.trainee, incident_id=inc.id if attach else None, params=params, reason=reason or "trainee action")
        except (KeyError, ValueError) as exc:  # an unknown target, bad parameters
            return self._record("action", inc, args, False, f"{action} on {target} failed: {exc}", reached=False)
        if result.detail.startswith("refused by the safety governor"):
            return self._record("action", inc, args, False, result.detail, unsafe=unsafe or result.detail, reached=False)
        return self._record("action", inc if attach else None, args, result.ok, result.detail, unsafe=unsafe)

    def escalate(self, ref: str | None = None, reason: str = "", *, incident_id: str | None = None) -> TraineeRecord:
        inc = self._pick(ref, incident_id)
        if inc is None:
            return self._missing("escalate", ref, {"reason": reason})
        try:
            self.engine.escalate(inc.id, self.trainee, reason or "escalated by the on-call")
        except ValueError as exc:
            return self._record("escalate", inc, {"reason": reason}, False, str(exc))
        return self._record("escalate", inc, {"reason": reason}, True, f"escalated: {reason or 'escalated by the on-call'}")

    def set_kill_switch(self, on: bool = True) -> TraineeRecord:
        self.engine.set_kill_switch(on, self.trainee)
        if on and self.kill_switch_on_ms is None:
            self.kill_switch_on_ms = self.engine.now_ms
        return self._record("kill_switch", None, {"on": on}, True, f"kill switch {'ON: automation stopped' if on else 'off'}")

    def set_dry_run(self, on: bool = True) -> TraineeRecord:
        self.engine.set_dry_run(on, self.trainee)
        if on and self.dry_run_on_ms is None:
            self.dry_run_on_ms = self.engine.now_ms
        return self._record("dry_run", None, {"on": on}, True, f"dry-run {'on: actions are planned, not applied' if on else 'off'}")

    def hint(self) -> Hint | None:
        """The next hint (each costs its points), or None when all are used."""
        i = len(self.hints_used)
        if i >= len(self.spec.hints):
            self._record("hint", None, {}, False, "no more hints")
            return None
        h = self.spec.hints[i]
        self.hints_used.append(i)
        self._record("hint", None, {"index": i, "cost": h.cost}, True, h.text)
        return h

    def note(self, text: str, ref: str | None = None, *, incident_id: str | None = None) -> TraineeRecord:
        inc = self._pick(ref, incident_id)
        if inc is None:
            return self._missing("note", ref, {"text": text})
        self.engine.note(inc.id, self.trainee, text)
        return self._record("note", inc, {"text": text}, True, "noted")

    # ------------------------------------------------------------------ scripted steps
    def due_ms(self, st: TraineeStep) -> int | None:
        """When a step is due (engine time), or None while its incident has not been paged."""
        if st.at_s is not None:
            return self.t0 + int(st.at_s * 1000)
        page = self.page_ms(st.incident)
        return None if page is None else page + int((st.after_page_s or 0) * 1000)

    def apply(self, st: TraineeStep) -> TraineeRecord | None:
        """Carry out one scripted step now."""
        if st.do == "acknowledge":
            return self.acknowledge(st.incident)
        if st.do == "classify":
            return self.classify(st.severity or "", st.incident)
        if st.do == "runbook":
            return self.choose_runbook(st.runbook or "", st.incident)
        if st.do == "action":
            return self.act(st.action or "", st.target or "", st.params, st.incident, st.reason)
        if st.do == "escalate":
            return self.escalate(st.incident, st.reason)
        if st.do == "kill_switch":
            return self.set_kill_switch(st.on)
        if st.do == "dry_run":
            return self.set_dry_run(st.on)
        if st.do == "hint":
            self.hint()
            return self.records[-1]
        return self.note(st.text, st.incident)


@dataclass
class ScriptRun:
    """What happened to an answers file's steps."""

    applied: list[tuple[int, TraineeStep]] = field(default_factory=list)
    unapplied: list[tuple[int, TraineeStep, str]] = field(default_factory=list)


def play_steps(session: TraineeSession, steps: list[TraineeStep], *, stop_when_settled: bool = True) -> ScriptRun:
    """Play scripted steps on a session until the scenario ends (or, with ``stop_when_settled``,
    until every step ran and every expected incident is over). Steps due at the same time run
    in file order, after the engine tick of that time."""
    run = ScriptRun()
    pending = list(enumerate(steps))
    while True:
        due = []
        for i, st in pending:
            t = session.due_ms(st)
            if t is not None and t <= session.now_ms:
                due.append((t, i, st))
        for _, i, st in sorted(due, key=lambda x: (x[0], x[1])):
            session.apply(st)
            run.applied.append((i, st))
        done = {i for _, i, _ in due}
        pending = [(i, st) for i, st in pending if i not in done]
        if session.over:
            break
        if stop_when_settled and not pending and session.settled():
            break
        session.step()
    for i, st in pending:
        ref = st.incident or session.default_ref()
        why = f"{ref} was never detected" if st.after_page_s is not None and session.page_ms(st.incident) is None else "the scenario ended first"
        run.unapplied.append((i, st, why))
    return run


def run_answers(
    scenario: Scenario,
    steps: list[TraineeStep],
    *,
    trainee: str,
    seed: int = 1,
    policy: Policy | None = None,
    extra_unsafe: Iterable[UnsafeAction] | None = None,
):
    """Play a scripted trainee on ``scenario`` headless and score it: (ScoreReport, session)."""
    from engine.training.score import score

    session = TraineeSession(scenario, trainee=trainee, seed=seed, policy=policy, extra_unsafe=extra_unsafe)
    run = play_steps(session, steps)
    return score(session, unapplied=[f"step {i + 1} ({st.do} at {st.offset_text}): {why}" for i, st, why in run.unapplied]), session
