"""A finished post-incident review becomes a knowledge-base entry; drafts and broken PIRs are refused
with messages that say what is missing and where."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyzer.knowledge import (
    PACKAGED_DIR,
    KnowledgeBase,
    PirError,
    PirRefused,
    add_from_pir,
    make_request,
    pir_to_entry,
    read_entry,
    read_pir,
)
from analyzer.knowledge.entry import parse_entry
from analyzer.knowledge.pir import suggest_related
from engine.datadir import DataDir

FIXTURE = Path(__file__).parent / "data" / "knowledge_pir_final.md"


def variant(tmp_path: Path, edit) -> Path:
    p = tmp_path / "pir.md"
    p.write_text(edit(FIXTURE.read_text()))
    return p


def test_final_pir_becomes_a_valid_entry(tmp_path: Path) -> None:
    doc = read_pir(FIXTURE)
    assert doc.meta.status == "FINAL" and doc.duration_min == 29
    name, text = pir_to_entry(doc)
    assert name == "incident-queue-backlog-connection-pool-exhaustion-2026-10-14.md"
    e = parse_entry(tmp_path / name, text)
    m = e.meta
    assert m.title == "Queue backlog - A config push cut the action-handler database connection pool from 40 to 8"
    assert m.incident_id == "urn:uuid:5e0b7c1a-3f42-4d8e-9a61-2c7d9e4b8f10"
    assert (m.severity, m.duration_min, m.mttr_min) == ("Sev2", 29, 29)
    assert m.customers_affected == "52 / 1,310 (4.0%)"
    assert m.incident_types == ["queue_backlog_overflow"]
    assert m.causes[0] == "connection_pool_exhaustion" and "bad_config" in m.causes
    assert m.accounts == ["acct-1001"] and m.services == ["governor"]
    assert m.outcome == "escalated"  # the timeline says it went to the Tech Lead
    assert m.root_cause.startswith("A config push cut the action-handler database connection pool")
    assert "DB_POOL_MAX" in m.solution and "rolling restart" in m.solution
    assert m.links.pir == str(FIXTURE)
    # The sections carry the PIR's substance.
    assert len(e.timeline_rows()) == 10
    assert "T+15 min (09:27 UTC): Config rollback of DB_POOL_MAX" in e.section("Resolution")
    assert "What failed at first" in e.section("Resolution") and "Auto-scaling raised concurrency twice" in e.section("Resolution")
    prev = e.prevention_items()
    assert prev["Short-term"][0] == (True, prev["Short-term"][0][1])  # "Status: Complete" is ticked
    assert prev["Short-term"][0][1].startswith("Alert when action-handler pool waiters exceed 20")
    assert prev["Short-term"][1][0] is False
    assert any("pool-waiter panel" in t for _, t in prev["Medium-term"])
    assert prev["Long-term"][0][1].startswith("Breakers on every governor dependency")
    assert "The pool-waiter metric existed but had no alert." in e.section("Contributing Factors")
    assert "Contributing factors" not in e.section("Root Cause")
    assert "Shrinking a connection pool is a capacity change" in e.section("Lessons Learned")
    assert "Peak queue depth — 4,120" in e.section("Symptoms")


def test_draft_is_refused_unless_allowed(tmp_path: Path) -> None:
    draft = variant(tmp_path, lambda t: t.replace("status: FINAL", "status: DRAFT"))
    with pytest.raises(PirRefused) as exc:
        pir_to_entry(read_pir(draft))
    assert exc.value.field == "status" and "--allow-draft" in str(exc.value) and str(draft) in str(exc.value)
    name, text = pir_to_entry(read_pir(draft), allow_draft=True)
    assert parse_entry(tmp_path / name, text).meta.incident_id.endswith("2c7d9e4b8f10")


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (lambda t: t.replace("## 7. Metrics & Impact", "## 7. Metrics"), "section 7. Metrics & Impact", "missing"),
        (lambda t: t.replace("status: FINAL", "status: DONE"), "status", "DRAFT"),
        (lambda t: t.replace("incident_type: queue_backlog_overflow", "incident_type: cosmic_rays"), "incident_type", "queue_backlog_overflow"),
        (lambda t: re.sub(r"(?im)^.*root cause.*:.*$", "", t), "section 3. Root Cause Analysis (5 Whys)", "ROOT CAUSE"),
        (lambda t: t.replace("52 / 1,310", "fifty-two").replace("| Accounts Affected | fifty-two (4.0%) |", ""), "section 7. Metrics & Impact", "Accounts Affected"),
        (lambda t: t.replace('resolved_at: "2026-10-14T09:41:00Z"', 'resolved_at: "2026-10-14T08:41:00Z"'), "resolved_at", "before"),
        (lambda t: re.sub(r"(?m)^- \d\d:\d\d UTC.*$", "", t), "section 2. Timeline of Events", "HH:MM"),
    ],
)
def test_broken_pirs_name_the_section(tmp_path: Path, edit, where: str, message: str) -> None:
    p = variant(tmp_path, edit)
    with pytest.raises(PirError) as exc:
        pir_to_entry(read_pir(p))
    assert exc.value.field == where, str(exc.value)
    assert message in str(exc.value) and str(p) in str(exc.value)


def test_explicit_causes_override_inference(tmp_path: Path) -> None:
    _, text = pir_to_entry(read_pir(FIXTURE), causes=["slow-consumer"])
    e = parse_entry(tmp_path / "incident-x-2026-10-14.md", text, check_name=False)
    assert e.meta.causes == ["slow_consumer"]
    with pytest.raises(PirError, match="unknown root cause"):
        pir_to_entry(read_pir(FIXTURE), causes=["gremlins"])


def test_add_writes_once_and_becomes_searchable(tmp_path: Path) -> None:
    dest = tmp_path / "team"
    kb = KnowledgeBase(DataDir(tmp_path / "data"), entry_dirs=[PACKAGED_DIR, dest])
    related = suggest_related(read_pir(FIXTURE), kb)
    assert related and related[0] == "incident-queue-backlog-slow-consumer-2026-01-25"
    path = add_from_pir(FIXTURE, dest, related=related)
    entry = read_entry(path)
    assert entry.meta.related_incidents == related
    hits = kb.search(make_request(symptoms="DB_POOL_MAX shrank, queue kept growing after scale up"), log=False).hits
    assert hits[0].entry_id == path.name[:-3]
    with pytest.raises(PirRefused, match="already exists"):
        add_from_pir(FIXTURE, dest)
    assert add_from_pir(FIXTURE, dest, force=True) == path
    assert len(list(dest.glob("incident-*.md"))) == 1
    # A different incident that yields the same file name gets a numbered slug, not an overwrite.
    other = tmp_path / "other.md"
    other.write_text(FIXTURE.read_text().replace("5e0b7c1a-3f42-4d8e-9a61-2c7d9e4b8f10", "5e0b7c1a-3f42-4d8e-9a61-2c7d9e4b8f11"))
    second = add_from_pir(other, dest)
    assert second != path and second.name.endswith("-2-2026-10-14.md")
    assert not list(dest.glob(".*.tmp"))


def test_failed_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "team"
    broken = variant(tmp_path, lambda t: re.sub(r"(?im)^.*root cause.*:.*$", "", t))
    with pytest.raises(PirError):
        add_from_pir(broken, dest)
    assert not dest.exists() or not any(dest.iterdir())


def test_pir_with_unknown_front_matter_keys_is_accepted(tmp_path: Path) -> None:
    p = variant(tmp_path, lambda t: t.replace("service: governor", "service: governor\ngenerated_by: ggen pir create\nreceipts: 14"))
    assert read_pir(p).meta.service == "governor"
