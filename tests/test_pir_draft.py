"""`ggen pir create`: drafts with the ten sections, pre-filled from receipts and the reconstructed
timeline, every fact cited, receipts listed with their verification state; a FINAL draft becomes
a knowledge-base entry."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from analyzer.knowledge.pir import read_pir
from analyzer.pir import create_pir, lint_text
from analyzer.pir.lint import SECTIONS, has_citation
from console.cli.main import cli
from engine.clock import iso_utc, parse_iso_ms
from tests.timeline_support import drilled

NOW = parse_iso_ms("2026-01-25T15:00:00Z")


@pytest.fixture(scope="module")
def case():
    return drilled("queue-traffic-surge")


@pytest.fixture(scope="module")
def draft(case):
    led = case.ledger()
    try:
        d, tl = create_pir(case.db, led, case.incident_id, "Queue backlog incident", now_ms=NOW, anchors=case.anchors(), data_dir=case.data_dir)
    finally:
        led.close()
    return d, tl


def test_seed_form_of_the_command_writes_a_draft_into_the_data_dir(tmp_path):
    case = drilled("queue-traffic-surge")
    dd = tmp_path / "dd"
    shutil.copytree(case.data_dir.root, dd)
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id, "--title", "Queue backlog incident"])
    assert r.exit_code == 0, r.output
    files = list((dd / "pirs").glob("*.md"))
    assert len(files) == 1 and files[0].name.startswith("pir-2026-01-25-")
    assert "5 receipts cited, 5 verified" in r.output
    # a second run does not overwrite the review's edits
    r2 = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id, "--title", "Queue backlog incident"])
    assert r2.exit_code == 5 and r2.output.startswith("ggen: ") and "--force" in r2.output
    out = tmp_path / "elsewhere" / "p.md"
    r3 = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id[9:21], "--title", "Q", "--output", str(out), "--json"])
    assert r3.exit_code == 0, r3.output
    data = json.loads(r3.output)
    assert data["path"] == str(out) and out.exists() and data["status"] == "DRAFT"
    assert [x["verification"] for x in data["receipts_cited"]] == ["verified"] * len(data["receipts_cited"])


def test_all_ten_sections_and_front_matter(draft, case):
    d, _ = draft
    for s in SECTIONS:
        assert f"\n## {s}\n" in d.text
    assert d.text.startswith("---\nincident_id: " + case.incident_id)
    assert "status: DRAFT" in d.text and "severity: Sev2" in d.text
    # due: Sev2 is 24 h after resolution (severity.toml pir_due_s)
    resolved = parse_iso_ms(case.manifest["incidents"][0]["resolved_at"])
    assert d.due_ms == resolved + 24 * 3600 * 1000
    assert f"due_at: '{iso_utc(d.due_ms)}'" in d.text


def test_every_factual_line_cites_a_receipt_or_a_source_line(draft, case):
    d, tl = draft
    findings = lint_text(d.text, "draft.md")
    # what is left is for the review: placeholders and the two whys only people can answer
    assert {f.rule for f in findings} <= {"placeholder", "whys"}, [str(f) for f in findings]
    assert any(f.rule == "whys" for f in findings)
    body = d.text.split("## Receipts Cited")[0]
    section = None
    for line in body.splitlines():
        if line.startswith("## "):
            section = line[3:]
        if section in ("1. Incident Summary", "4. What Went Well", "5. What Went Wrong") and line.startswith("- ") and "TODO" not in line:
            assert has_citation(line), line
        if section == "2. Timeline of Events" and re.match(r"^- \d\d:\d\d:\d\d UTC", line):
            assert has_citation(line), line
    # the cited source lines exist and say what the draft says they say
    for m in re.finditer(r"\[([^\]]*logs/[\w.-]+:\d+[^\]]*)\]", d.text):
        for part in m.group(1).split("; "):
            if part.startswith("logs/"):
                path, n = part.rsplit(":", 1)
                lines = (case.set_dir / path).read_text().splitlines()
                assert 0 < int(n) <= len(lines)


def test_receipts_cited_with_their_verification_state(draft, case):
    d, tl = draft
    table = d.text.split("## Receipts Cited")[1]
    led = case.ledger()
    try:
        ids = {r.receipt_id for r in led.incident_receipts(case.incident_id)}
    finally:
        led.close()
    cited = set(re.findall(r"\| (urn:uuid:[0-9a-f-]{36}) \|", table))
    assert cited and cited <= ids
    assert {r.receipt_id for r in d.cited} == cited
    assert table.count("| verified |") == len(cited)
    # short citations in the text resolve to exactly one cited receipt
    for prefix in set(re.findall(r"receipt ([0-9a-f]{8,})\]", d.text)) | set(re.findall(r"receipt ([0-9a-f]{8,});", d.text)):
        assert len([i for i in cited if i.removeprefix("urn:uuid:").startswith(prefix)]) == 1, prefix


def test_content_from_the_runbook_record(draft):
    d, tl = draft
    text = d.text
    assert "scale_concurrency worked: assessed 'in_progress'" in text  # mitigation.assessed
    assert "MTTR 75 s met the 3 min 00 s target" in text  # recovery.verified
    assert "Resolved by the runbook without paging a human" in text
    assert "1 / 3 accounts affected" in text  # impact from the data
    # 5 whys: the first answers cite evidence
    whys = text.split("## 3. Root Cause Analysis (5 Whys)")[1].split("### Contributing factors")[0]
    a1 = next(line for line in whys.splitlines() if "A1:" in line)
    a2 = next(line for line in whys.splitlines() if "A2:" in line)
    assert has_citation(a1) and has_citation(a2) and "governor" in a2
    # action items from the prevention strategies and the knowledge base, each owned and dated
    actions = text.split("## 6. Action Items")[1].split("## 7.")[0]
    assert "Predictive scaling" in actions and "[runbooks/pir/pir.toml]" in actions
    assert "[knowledge incident-queue-backlog-" in actions
    items = [line for line in actions.splitlines() if line.startswith("- ") and "None suggested" not in line]
    assert items and all("Owner: " in i and re.search(r"Due: \d{4}-\d{2}-\d{2}", i) for i in items)
    # metrics against targets, and the due date by severity
    assert "| MTTR vs target | 75 s vs 3 min 00 s (met)" in text
    assert "| PIR due | 2026-01-26T14:07Z (Sev2: 24 h after resolution)" in text


def test_final_draft_becomes_a_knowledge_entry(draft, tmp_path, case):
    d, _ = draft
    pir = tmp_path / "pir.md"
    pir.write_text(d.text.replace("status: DRAFT", "status: FINAL", 1))
    doc = read_pir(pir)
    assert doc.meta.status == "FINAL" and doc.meta.incident_id == case.incident_id
    dd = tmp_path / "dd"
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "knowledge", "add", "--from-pir", str(pir), "--json"])
    assert r.exit_code == 0, r.output
    entry = json.loads(r.output)["path"]
    text = open(entry).read()
    assert "causes: [traffic_surge]" in text and "customers_affected: 1 / 3 (33.3%)" in text
    # the DRAFT itself is refused until signed off
    draft_file = tmp_path / "draft.md"
    draft_file.write_text(d.text)
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "knowledge", "add", "--from-pir", str(draft_file)])
    assert r.exit_code == 5


def test_verification_state_at_drafting_time_shows_a_tampered_receipt(tmp_path):
    case = drilled("breaker-dependency-outage")
    dd = tmp_path / "dd"
    shutil.copytree(case.data_dir.root, dd)
    db = sqlite3.connect(dd / "ledger.sqlite")
    seq, env = db.execute("SELECT seq, envelope FROM receipts WHERE kind = 'mitigation.applied' ORDER BY seq LIMIT 1").fetchone()
    env = bytearray(env)
    i = env.index(b'"signatures"') - 20  # a byte of the base64 payload
    env[i] = ord("A") if env[i] != ord("A") else ord("B")
    db.execute("UPDATE receipts SET envelope = ? WHERE seq = ?", (bytes(env), seq))
    db.commit()
    db.close()
    out = tmp_path / "p.md"
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id, "--title", "Breaker", "--output", str(out), "--no-knowledge"])
    assert r.exit_code == 0, r.output
    assert "NOT verified" in r.output
    table = out.read_text().split("## Receipts Cited")[1]
    assert "| failed: " in table and "| verified |" in table
    assert "does not verify" in out.read_text().split("## 5. What Went Wrong")[1].split("## 6.")[0]


def test_draft_without_ingested_data_uses_the_receipts(tmp_path):
    case = drilled("region-outage")
    dd = tmp_path / "dd"
    shutil.copytree(case.data_dir.root, dd)
    (dd / "analyzer.duckdb").unlink()
    out = tmp_path / "p.md"
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id, "--title", "Region", "--output", str(out), "--no-knowledge"])
    assert r.exit_code == 0, r.output
    assert "drafted from the receipts alone" in r.output
    text = out.read_text()
    assert all(f"## {s}" in text for s in SECTIONS)
    assert "ALERT TRIGGERED" in text and "ALL CLEAR" in text


def test_unknown_incident_is_a_one_line_error(tmp_path):
    case = drilled("region-outage")
    r = CliRunner().invoke(cli, ["--data-dir", str(case.data_dir.root), "pir", "create", "--incident-id", "0123456789abcdef", "--title", "x"])
    assert r.exit_code == 4 and r.output.count("\n") == 1 and r.output.startswith("ggen: no incident matches")
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "pir", "create", "--incident-id", case.incident_id, "--title", "x"])
    assert r.exit_code == 4 and r.output.startswith("ggen: no ledger")
    r = CliRunner().invoke(cli, ["--data-dir", str(case.data_dir.root), "pir", "create", "--incident-id", case.incident_id, "--title", "  "])
    assert r.exit_code == 2
