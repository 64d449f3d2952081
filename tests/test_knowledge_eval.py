"""Search quality on an evaluation set of symptom descriptions typed the way an on-call engineer
types them at 3 a.m.: mean reciprocal rank and precision at 3 must both stay above 0.8."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer.knowledge import PACKAGED_DIR, KnowledgeBase, make_request
from engine.datadir import DataDir

EVAL_PATH = Path(__file__).parent / "data" / "knowledge_eval.toml"
THRESHOLD = 0.8


@dataclass(frozen=True)
class Case:
    query: str
    flag: str
    type: str | None
    expect: tuple[str, ...]
    relevant: tuple[str, ...]


def load_cases() -> list[Case]:
    data = tomllib.loads(EVAL_PATH.read_text())
    return [
        Case(c["query"], c.get("flag", "symptoms"), c.get("type"), tuple(c["expect"]), tuple(c.get("relevant", [])))
        for c in data["case"]
    ]


def evaluate(kb: KnowledgeBase, cases: list[Case]) -> tuple[float, float, list[tuple[Case, int | None, list[str]]]]:
    """(MRR over `expect`, precision at 3 over expect+relevant normalised by min(3, |relevant|), rows)."""
    rr, p3, rows = [], [], []
    for c in cases:
        req = make_request(**{c.flag: c.query}, types=[c.type] if c.type else (), limit=10, settings=kb.settings)
        got = [h.entry_id for h in kb.search(req, log=False).hits]
        rank = next((i + 1 for i, x in enumerate(got) if x in c.expect), None)
        rr.append(1.0 / rank if rank else 0.0)
        rel = set(c.expect) | set(c.relevant)
        p3.append(len([x for x in got[:3] if x in rel]) / min(3, len(rel)))
        rows.append((c, rank, got[:3]))
    return sum(rr) / len(rr), sum(p3) / len(p3), rows


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return KnowledgeBase(DataDir(tmp_path_factory.mktemp("kbeval")), entry_dirs=[PACKAGED_DIR])


def test_evaluation_set_is_sound() -> None:
    cases = load_cases()
    assert len(cases) >= 40
    known = {p.name[:-3] for p in PACKAGED_DIR.glob("incident-*.md")}
    corpus = "\n".join(p.read_text().lower() for p in PACKAGED_DIR.glob("incident-*.md"))
    for c in cases:
        assert c.flag in ("symptoms", "root_cause", "solution", "text")
        assert c.expect and set(c.expect) <= known, c.query
        assert set(c.relevant) <= known and not set(c.relevant) & set(c.expect), c.query
        # Written by hand, not copied: a query longer than a metric name never appears verbatim.
        if len(c.query) > 30:
            assert c.query.lower() not in corpus, f"copied from an entry: {c.query!r}"
    # Short, typed-in-a-hurry text: most queries are under 80 characters, some carry typos.
    assert sum(len(c.query) < 80 for c in cases) >= 0.9 * len(cases)
    assert sum(bool(re.search(r"latncy|concurency|pausess|replcation|crashlop|oomkiled", c.query)) for c in cases) >= 4


def test_mrr_and_precision_at_3_stay_above_threshold(kb: KnowledgeBase, capsys: pytest.CaptureFixture[str]) -> None:
    cases = load_cases()
    mrr, p_at_3, rows = evaluate(kb, cases)
    misses = [f"  rank {r or '-'}: {c.query!r} -> {top}" for c, r, top in rows if r != 1]
    report = f"knowledge search evaluation: {len(cases)} queries, MRR {mrr:.3f}, precision@3 {p_at_3:.3f}"
    with capsys.disabled():
        print("\n" + report)
    assert mrr > THRESHOLD, report + "\n" + "\n".join(misses)
    assert p_at_3 > THRESHOLD, report + "\n" + "\n".join(misses)
