"""The knowledge assessment: a bank of multiple-choice questions as data (runbooks/quiz/*.toml),
drawn per attempt with a seed (spread over the topics, choices shuffled), graded against the pass
mark of runbooks/training/training.toml.

A question may carry a ``check`` tying its answer to the data it comes from: a value in the
loaded policy (``path``, e.g. ``severity.levels.Sev1.ack_within_s`` shown in ``unit = "min"``), a
value in another data file under runbooks/ (``file`` + ``path``), or the scaling arithmetic
(``scaling = [concurrency, depth]``). :func:`check_question` computes the value, so a policy change
that makes a question wrong is caught by a test instead of teaching the wrong number.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from engine.policy.loader import PolicyError, StrictModel, load_model, read_data_file

LETTERS = "ABCDEF"


class QuizCheck(StrictModel):
    """Where a question's answer comes from."""

    path: str | None = None
    unit: Literal["s", "min", "h", "d", "ms"] | None = None  # the unit the answer is stated in
    file: str | None = None  # a data file under runbooks/ (default: the loaded policy)
    scaling: list[int] | None = Field(default=None, min_length=2, max_length=2)  # [concurrency, depth]

    @model_validator(mode="after")
    def _one(self) -> "QuizCheck":
        if (self.path is None) == (self.scaling is None):
            raise ValueError("give either path (a value in the data) or scaling = [concurrency, depth]")
        return self


class Question(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    topic: str
    text: str
    choices: list[str] = Field(min_length=2, max_length=len(LETTERS))
    answer: str
    explain: str
    check: QuizCheck | None = None

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> "Question":
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices must be different from each other")
        if self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices")
        return self


class QuizFile(StrictModel):
    questions: list[Question] = Field(min_length=1)


@dataclass
class QuizBank:
    questions: list[Question]
    sha256: str  # of the bank files, in name order (what an attempt was graded against)

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    @property
    def topics(self) -> list[str]:
        return sorted({q.topic for q in self.questions})


def quiz_dir() -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "quiz"


def load_bank(directory: Path | None = None) -> QuizBank:
    """Every question file; ids must be unique across files (errors name the file and field)."""
    d = directory or quiz_dir()
    files = sorted(Path(d).glob("*.toml"))
    if not files:
        raise PolicyError(d, None, "no question files (*.toml)")
    seen: dict[str, Path] = {}
    out: list[Question] = []
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
        qf = load_model(p, QuizFile)
        for i, q in enumerate(qf.questions):
            if q.id in seen:
                raise PolicyError(p, f"questions.{i}.id", f"{q.id!r} is already used in {seen[q.id].name}")
            seen[q.id] = p
            out.append(q)
    return QuizBank(out, h.hexdigest())


# ----------------------------------------------------------------------------- attempts
@dataclass(frozen=True)
class AttemptQuestion:
    """A question as one attempt shows it: its choices in this attempt's order."""

    id: str
    topic: str
    text: str
    choices: tuple[str, ...]
    answer_index: int
    explain: str

    @property
    def answer(self) -> str:
        return self.choices[self.answer_index]


def draw(bank: QuizBank, seed: int, count: int) -> list[AttemptQuestion]:
    """``count`` questions for one attempt: every topic shuffled with the seed, then taken in
    turns (so an attempt spreads over the topics), each question's choices shuffled too."""
    rng = random.Random(f"quiz-{seed}")
    by_topic: dict[str, list[Question]] = {}
    for q in bank.questions:
        by_topic.setdefault(q.topic, []).append(q)
    order = sorted(by_topic)
    rng.shuffle(order)
    for t in order:
        rng.shuffle(by_topic[t])
    picked: list[Question] = []
    while len(picked) < min(count, len(bank.questions)):
        for t in order:
            if by_topic[t] and len(picked) < count:
                picked.append(by_topic[t].pop())
    rng.shuffle(picked)
    out = []
    for q in picked:
        choices = list(q.choices)
        random.Random(f"quiz-{seed}-{q.id}").shuffle(choices)
        out.append(AttemptQuestion(q.id, q.topic, q.text, tuple(choices), choices.index(q.answer), q.explain))
    return out


def _norm(s: str) -> str:
    return " ".join(s.casefold().split())


def match_answer(q: AttemptQuestion, given: str | None) -> int | None:
    """The index of the choice ``given`` names: a letter (A, B, ...) in this attempt's order, or
    the choice's text (case and spacing ignored). None when it names none."""
    if given is None:
        return None
    g = str(given).strip()
    if len(g) == 1 and g.upper() in LETTERS[: len(q.choices)]:
        return LETTERS.index(g.upper())
    for i, c in enumerate(q.choices):
        if _norm(c) == _norm(g):
            return i
    return None


@dataclass
class QuestionResult:
    id: str
    topic: str
    text: str
    given: str | None
    correct: bool
    answer: str
    explain: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "given": self.given, "correct": self.correct, "answer": self.answer, "explain": self.explain}


@dataclass
class QuizResult:
    seed: int
    pass_pct: int
    bank_sha256: str
    questions: list[QuestionResult] = field(default_factory=list)

    @property
    def correct(self) -> int:
        return sum(1 for q in self.questions if q.correct)

    @property
    def total(self) -> int:
        return len(self.questions)

    @property
    def score_pct(self) -> float:
        return round(100.0 * self.correct / self.total, 1) if self.total else 0.0

    @property
    def passed(self) -> bool:
        return self.total > 0 and self.score_pct >= self.pass_pct

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "score_pct": self.score_pct,
            "pass_pct": self.pass_pct,
            "passed": self.passed,
            "correct": self.correct,
            "total": self.total,
            "bank_sha256": self.bank_sha256,
            "questions": [q.to_dict() for q in self.questions],
        }


def grade(questions: list[AttemptQuestion], answers: dict[str, str | None], *, seed: int, pass_pct: int, bank_sha256: str) -> QuizResult:
    """Grade an attempt. ``answers`` maps question id -> a letter or the choice text; a question
    without an answer, or with one that names no choice, is wrong."""
    res = QuizResult(seed, pass_pct, bank_sha256)
    for q in questions:
        given = answers.get(q.id)
        idx = match_answer(q, given)
        shown = q.choices[idx] if idx is not None else (None if given is None else str(given))
        res.questions.append(QuestionResult(q.id, q.topic, q.text, shown, idx == q.answer_index, q.answer, q.explain))
    return res


class QuizAnswers(StrictModel):
    """A scripted attempt (``ggen certify quiz --answers FILE``)."""

    trainee: str | None = None
    seed: int | None = Field(default=None, ge=0)
    answers: dict[str, str]


def load_quiz_answers(path: Path) -> QuizAnswers:
    return load_model(Path(path), QuizAnswers)


# ----------------------------------------------------------------------------- checks
_UNIT_FROM = {"_ms": "ms", "_s": "s"}
_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "ms": 0.001}


def _walk(root: Any, path: str) -> Any:
    cur = root
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                raise KeyError(f"{path}: no {part!r}")
            cur = cur[part]
        elif isinstance(cur, (list, tuple)):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                raise KeyError(f"{path}: {part!r} is not an index of a list of {len(cur)}") from None
        else:
            if not hasattr(cur, part):
                raise KeyError(f"{path}: no {part!r}")
            cur = getattr(cur, part)
    return cur


def expected_value(check: QuizCheck, policy: Any, runbooks_dir: Path | None = None) -> Any:
    """The value a question's answer must state, computed from the data."""
    if check.scaling is not None:
        from engine.mitigate.scaling import next_concurrency

        current, depth = check.scaling
        return next_concurrency(current, depth, policy.mitigation.scaler).proposed
    assert check.path is not None
    if check.file:
        from runbooks import RUNBOOKS_DIR

        root: Any = read_data_file((runbooks_dir or RUNBOOKS_DIR) / check.file)
    else:
        root = policy
    value = _walk(root, check.path)
    if check.unit and isinstance(value, (int, float)) and not isinstance(value, bool):
        last = check.path.rsplit(".", 1)[-1]
        stored = next((u for suf, u in _UNIT_FROM.items() if last.endswith(suf)), "s")
        value = value * _SECONDS[stored] / _SECONDS[check.unit]
    return value


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def check_question(q: Question, policy: Any, runbooks_dir: Path | None = None) -> str | None:
    """None when the question's answer agrees with the data; otherwise what is wrong."""
    if q.check is None:
        return None
    try:
        want = expected_value(q.check, policy, runbooks_dir)
    except (KeyError, PolicyError) as exc:
        return f"{q.id}: check cannot be evaluated: {exc}"
    if isinstance(want, bool) or not isinstance(want, (int, float)):
        w = _norm(str(want)).replace("-", " ")
        if w not in _norm(q.answer).replace("-", " "):
            return f"{q.id}: the answer {q.answer!r} does not state {want!r} from {q.check.path}"
        return None
    m = _NUMBER.search(q.answer)
    if m is None:
        return f"{q.id}: the answer {q.answer!r} has no number; the data says {want:g}"
    got = float(m.group().replace(",", ""))
    if abs(got - float(want)) > 1e-9:
        return f"{q.id}: the answer says {got:g} but {q.check.path or 'the scaling rule'} gives {float(want):g}"
    for c in q.choices:  # a distractor must not also be right
        if c != q.answer:
            m2 = _NUMBER.search(c)
            if m2 is not None and abs(float(m2.group().replace(",", "")) - float(want)) < 1e-9 and _norm(c) != _norm(q.answer):
                return f"{q.id}: choice {c!r} also states the right value"
    return None
