"""Training history in the data directory: ``<data>/training/history.jsonl``.

One JSON object per line, appended: a scenario result (``kind = "scenario"``), a quiz attempt
(``"quiz"``) or a certificate issued (``"certificate"``). Every record has an ``id``
(``urn:uuid:...``), the ``trainee``, and ``at`` / ``at_ms`` (wall-clock time it was recorded). A
certificate names the ids of the results it rests on and carries a digest of each, so the signed
receipt pins what the history said.

A damaged line (a torn write, a hand edit) is reported with its line number and skipped; the
other lines still count.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from engine.clock import iso_utc

HISTORY_FILE = "history.jsonl"


def training_data_dir(data_root: Path) -> Path:
    """Where training results live inside a data directory."""
    return Path(data_root) / "training"


def record_digest(rec: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys): what a certificate pins."""
    return hashlib.sha256(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class HistoryRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "<file>:<line>: <what>"


class TrainingHistory:
    """Append-only results of one data directory."""

    def __init__(self, data_root: Path) -> None:
        self.dir = training_data_dir(data_root)
        self.path = self.dir / HISTORY_FILE

    def append(self, record: dict[str, Any], *, now_ms: int) -> dict[str, Any]:
        """Write one record (an id and times are added); returns it as stored."""
        rec = {"id": "urn:uuid:" + str(uuid.uuid4()), "at": iso_utc(now_ms), "at_ms": now_ms, **record}
        line = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n"
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)  # one write per record: concurrent writers do not interleave lines
        finally:
            os.close(fd)
        return rec

    def read(self) -> HistoryRead:
        out = HistoryRead()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return out
        for n, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                out.problems.append(f"{self.path}:{n}: not JSON ({exc})")
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("trainee"), str) or rec.get("kind") not in ("scenario", "quiz", "certificate") or not isinstance(rec.get("at_ms"), int):
                out.problems.append(f"{self.path}:{n}: not a training record (needs kind, trainee, at_ms)")
                continue
            out.records.append(rec)
        return out

    def for_trainee(self, trainee: str) -> Iterator[dict[str, Any]]:
        for rec in self.read().records:
            if rec["trainee"] == trainee:
                yield rec

    def trainees(self) -> list[str]:
        return sorted({r["trainee"] for r in self.read().records})


def scenario_record(report: Any, *, mode: str, scenario_sha256: str, answers_sha256: str | None = None) -> dict[str, Any]:
    """The history record of a scored scenario (``report`` is a ScoreReport)."""
    return {
        "kind": "scenario",
        "trainee": report.trainee,
        "scenario": report.scenario,
        "scenario_sha256": scenario_sha256,
        "mode": mode,  # headless (answers file) | console
        "answers_sha256": answers_sha256,
        "seed": report.seed,
        "score_pct": report.score_pct,
        "pass_pct": report.pass_pct,
        "passed": report.passed,
        "failures": report.failures,
        "hints_used": report.hints_used,
        "criteria": [c.to_dict() for c in report.criteria],
    }
