"""Certification: a trainee who passed every required scenario and the knowledge assessment gets a
certificate, written as a signed ``certificate.issued`` receipt in the data directory's ledger
(verifiable with ``ggen incidents verify --receipt-id ID``) and noted in the training history.

Which scenarios are required is data: every scenario whose ``[training]`` table says
``certification = true``. Results older than ``results_valid_days`` (training.toml) do not count.
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

    @property
    def missing(self) -> list[str]:
        out = [f"scenario {n}" for n in self.required if n not in self.passed]
        if self.quiz is None:
            out.append("the knowledge assessment (ggen certify quiz)")
        return out

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
        }


def eligibility(history: TrainingHistory, trainee: str, scenarios: dict[str, Scenario], config: TrainingConfig, now_ms: int) -> Eligibility:
    """What the trainee's recent results are worth toward a certificate."""
    req = required_scenarios(scenarios)
    el = Eligibility(trainee, req)
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
            if rec.get("passed") is True and rec.get("scenario_sha256") == scenario_sha256(name):
                best = el.passed.get(name)
                if best is None or rec.get("score_pct", 0) >= best.get("score_pct", 0):
                    el.passed[name] = rec
        elif kind == "quiz":
            el.last_quiz = rec
            if rec.get("passed") is True and (el.quiz is None or rec.get("score_pct", 0) >= el.quiz.get("score_pct", 0)):
                el.quiz = rec
    return el


class NotEligible(ValueError):
    """The trainee has not passed everything a certificate needs."""


def issue_certificate(data_dir: Any, el: Eligibility, config: TrainingConfig, *, now_ms: int, actor: str) -> dict[str, Any]:
    """Write the ``certificate.issued`` receipt (signed with the data directory's key) and the
    history record. Returns the history record (with ``receipt_id``)."""
    if not el.eligible:
        raise NotEligible(f"{el.trainee} is not eligible yet: missing " + "; ".join(el.missing))
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
        },
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
        {"kind": "certificate", "trainee": el.trainee, "receipt_id": stored.receipt_id, "valid_until": iso_utc(valid_until), "issued_by": actor, "results": [r["id"] for r in el.passed.values()] + [el.quiz["id"]]},  # type: ignore[index]
        now_ms=now_ms,
    )
