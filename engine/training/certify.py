"""Certification: a trainee who passed every required scenario and the knowledge assessment gets a
certificate, written as a signed ``certificate.issued`` receipt in the data directory's ledger
(verifiable with ``ggen incidents verify --receipt-id ID``) and noted in the training history.

Which scenarios are required is data: every scenario whose ``[training]`` table says
``certification = true``. Results older than ``results_valid_days`` (training.toml) do not count.

Only results a person played count: a scenario played in the trainee console and a quiz taken
in the console or on the terminal. Headless runs (``ggen train run --answers``) and scripted
quizzes (``ggen certify quiz --answers``) are practice and drills; they count only when the
issuer says so explicitly (``accept_scripted``, ``ggen certify --accept-scripted``), and the
certificate then records that it rests on scripted results. A trainee holding a certificate still
valid is not issued another unless it is asked for (``reissue``); the new one names the old one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import iso_utc
from engine.drill.scenario import Scenario, scenarios_dir
from engine.policy.loader import file_sha256
from engine.training.config import TrainingConfig
from engine.training.history import TrainingHistory, record_digest

CERTIFICATE_KIND = "certificate.issued"
# The result modes a person plays (what counts without accept_scripted), per record kind.
PLAYED_MODES = {"scenario": ("console",), "quiz": ("console", "terminal")}


def played_by_a_person(rec: dict[str, Any]) -> bool:
    """A scenario result or quiz attempt a person played (not an answers file)."""
    return rec.get("mode") in PLAYED_MODES.get(rec.get("kind", ""), ())


def required_scenarios(scenarios: dict[str, Scenario]) -> list[str]:
    return sorted(n for n, s in scenarios.items() if s.training is not None and s.training.certification)


def scenario_sha256(name: str, directory: Path | None = None) -> str:
    return file_sha256((directory or scenarios_dir()) / f"{name}.toml")


@dataclass
class Eligibility:
    """Where a trainee stands: the passing result per required scenario, the passing quiz."""

    trainee: str
    required: list[str]
    passed: dict[str, dict[str, Any]] = field(default_factory=dict)  # scenario -> best recent passing record
    attempted: dict[str, dict[str, Any]] = field(default_factory=dict)  # scenario -> latest record
    quiz: dict[str, Any] | None = None  # best recent passing attempt
    last_quiz: dict[str, Any] | None = None
    certificates: list[dict[str, Any]] = field(default_factory=list)
    accept_scripted: bool = False
    practice: int = 0  # passing scripted results left out (they do not count without accept_scripted)

    @property
    def missing(self) -> list[str]:
        out = [f"scenario {n}" for n in self.required if n not in self.passed]
        if self.quiz is None:
            out.append("the knowledge assessment (ggen certify quiz)")
        return out

    def current_certificate(self, now_ms: int) -> dict[str, Any] | None:
        """The newest certificate still valid at ``now_ms`` (None when there is none)."""
        from engine.clock import parse_iso_ms

        for c in reversed(self.certificates):
            try:
                until = parse_iso_ms(str(c.get("valid_until")))
            except ValueError:
                continue
            if until > now_ms:
                return c
        return None

    @property
    def eligible(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "trainee": self.trainee,
            "eligible": self.eligible,
            "missing": self.missing,
            "scenarios": [
                {
                    "scenario": n,
                    "passed": n in self.passed,
                    "score_pct": (self.passed.get(n) or self.attempted.get(n) or {}).get("score_pct"),
                    "at": (self.passed.get(n) or self.attempted.get(n) or {}).get("at"),
                    "attempted": n in self.attempted,
                }
                for n in self.required
            ],
            "quiz": None if self.quiz is None else {"score_pct": self.quiz["score_pct"], "at": self.quiz["at"], "seed": self.quiz.get("seed")},
            "last_quiz": None if self.last_quiz is None else {"score_pct": self.last_quiz["score_pct"], "passed": self.last_quiz["passed"], "at": self.last_quiz["at"]},
            "certificates": [{"receipt_id": c.get("receipt_id"), "at": c["at"], "valid_until": c.get("valid_until")} for c in self.certificates],
            "accept_scripted": self.accept_scripted,
            "practice_results_not_counted": self.practice,
        }


def eligibility(history: TrainingHistory, trainee: str, scenarios: dict[str, Scenario], config: TrainingConfig, now_ms: int, *, accept_scripted: bool = False) -> Eligibility:
    """What the trainee's recent results are worth toward a certificate (scripted results only
    with ``accept_scripted``)."""
    req = required_scenarios(scenarios)
    el = Eligibility(trainee, req, accept_scripted=accept_scripted)
    oldest = now_ms - config.certification.results_valid_days * 86_400_000
    for rec in history.for_trainee(trainee):
        kind = rec["kind"]
        if kind == "certificate":
            el.certificates.append(rec)
            continue
        if rec["at_ms"] < oldest:
            continue
        if kind == "scenario":
            name = rec.get("scenario")
            if name not in req:
                continue
            el.attempted[name] = rec
            if rec.get("passed") is True and not accept_scripted and not played_by_a_person(rec):
                el.practice += 1
                continue
            if rec.get("passed") is True and rec.get("scenario_sha256") == scenario_sha256(name):
                best = el.passed.get(name)
                if best is None or rec.get("score_pct", 0) >= best.get("score_pct", 0):
                    el.passed[name] = rec
        elif kind == "quiz":
            el.last_quiz = rec
            if rec.get("passed") is True and not accept_scripted and not played_by_a_person(rec):
                el.practice += 1
                continue
            if rec.get("passed") is True and (el.quiz is None or rec.get("score_pct", 0) >= el.quiz.get("score_pct", 0)):
                el.quiz = rec
    return el


class NotEligible(ValueError):
    """The trainee has not passed everything a certificate needs."""


class AlreadyCertified(ValueError):
    """The trainee holds a certificate still valid (``certificate``: its history record)."""

    def __init__(self, certificate: dict[str, Any]) -> None:
        super().__init__(f"already certified: receipt {certificate.get('receipt_id')}, valid until {certificate.get('valid_until')}")
        self.certificate = certificate


def issue_certificate(data_dir: Any, el: Eligibility, config: TrainingConfig, *, now_ms: int, actor: str, reissue: bool = False) -> dict[str, Any]:
    """Write the ``certificate.issued`` receipt (signed with the data directory's key) and the
    history record. Returns the history record (with ``receipt_id``). Raises AlreadyCertified
    when a certificate is still valid, unless ``reissue``."""
    if not el.eligible:
        raise NotEligible(f"{el.trainee} is not eligible yet: missing " + "; ".join(el.missing))
    current = el.current_certificate(now_ms)
    if current is not None and not reissue:
        raise AlreadyCertified(current)
    from engine.receipts import KeyStore, Ledger, ReceiptSink

    valid_until = now_ms + config.certification.valid_days * 86_400_000
    evidence = {
        "certificate": config.certification.name,
        "trainee": el.trainee,
        "issued_at": iso_utc(now_ms),
        "valid_until": iso_utc(valid_until),
        "scenarios": [
            {
                "scenario": n,
                "result_id": r["id"],
                "score_bp": int(round(float(r["score_pct"]) * 100)),
                "passed_at": r["at"],
                "scenario_sha256": r.get("scenario_sha256"),
                "result_sha256": record_digest(r),
                "mode": r.get("mode"),
            }
            for n, r in sorted(el.passed.items())
        ],
        "quiz": {
            "attempt_id": el.quiz["id"],  # type: ignore[index]
            "score_bp": int(round(float(el.quiz["score_pct"]) * 100)),  # type: ignore[index]
            "pass_bp": int(el.quiz["pass_pct"]) * 100,  # type: ignore[index]
            "questions": el.quiz.get("total"),  # type: ignore[union-attr]
            "seed": el.quiz.get("seed"),  # type: ignore[union-attr]
            "bank_sha256": el.quiz.get("bank_sha256"),  # type: ignore[union-attr]
            "passed_at": el.quiz["at"],  # type: ignore[index]
            "result_sha256": record_digest(el.quiz),  # type: ignore[arg-type]
            "mode": el.quiz.get("mode"),  # type: ignore[union-attr]
        },
        # True: the issuer let headless runs / scripted quizzes count (ggen certify --accept-scripted)
        "accepted_scripted": el.accept_scripted,
        "scripted_results": sum(1 for r in [*el.passed.values(), el.quiz] if r is not None and not played_by_a_person(r)),
        "reissue_of": current.get("receipt_id") if current is not None else None,
    }
    data_dir.ensure()
    keys = KeyStore.open_or_init(data_dir.keys_dir, now_ms=now_ms)
    ledger = Ledger.open(data_dir.ledger_path, keys)
    try:
        sink = ReceiptSink(ledger, keys)
        stored = sink.append_receipt(
            CERTIFICATE_KIND,
            None,
            evidence=evidence,
            actor=f"person:{actor}",
            source_signal="training.history",
            summary=f"{config.certification.name} certificate for {el.trainee}: {len(el.passed)} scenarios and the knowledge assessment passed",
            observed_at_ms=now_ms,
            recorded_at_ms=now_ms,
        )
    finally:
        ledger.close()
    history = TrainingHistory(data_dir.root)
    return history.append(
        {"kind": "certificate", "trainee": el.trainee, "receipt_id": stored.receipt_id, "valid_until": iso_utc(valid_until), "issued_by": actor, "accepted_scripted": el.accept_scripted, "reissue_of": evidence["reissue_of"], "results": [r["id"] for r in el.passed.values()] + [el.quiz["id"]]},  # type: ignore[index]
        now_ms=now_ms,
    )
