"""`ggen pir lint`: each anti-pattern of the PIR template found at its line, a clean review passes,
and the command's output and exit codes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from analyzer.pir import lint_text
from analyzer.pir.lint import has_citation
from console.cli.main import cli

CLEAN = """---
incident_id: "urn:uuid:5e0b7c1a-3f42-4d8e-9a61-2c7d9e4b8f10"
title: "Queue backlog on acct-1001"
severity: Sev2
incident_type: queue_backlog_overflow
status: FINAL
detected_at: "2026-10-14T09:12:00Z"
resolved_at: "2026-10-14T09:41:00Z"
service: governor
---

# Post-Incident Review

## 1. Incident Summary

- **Incident ID:** urn:uuid:5e0b7c1a-3f42-4d8e-9a61-2c7d9e4b8f10 [receipt 5e0b7c1a]
- **Duration:** 09:12-09:41 UTC (29 min) [receipt 5e0b7c1a; receipt 77aa0011]
- **Impact:** 52 / 1,310 accounts (4.0%) [metrics/metrics.jsonl:1200]

Deliveries for acct-1001 were delayed while action-handler answered 503 [logs/governor.logfmt:812].

## 2. Timeline of Events

- 09:05 UTC  Config push lowers DB_POOL_MAX from 40 to 8 [logs/action-handler.log:4410]
- 09:12 UTC  Alert: queue depth 1,180 > 1000 for 60 s [receipt 5e0b7c1a]

## 3. Root Cause Analysis (5 Whys)

- Q1: Why did the queue grow? A1: Processing fell to 190 msgs/min against 350 ingest [metrics/metrics.jsonl:1188].
- Q2: Why did processing fall? A2: Workers waited on action-handler [span 3f2a9c1e12345678 of trace abc (traces/t.jsonl#4)].
- Q3: Why was action-handler slow? A3: Requests queued for one of only 8 connections.
- Q4: Why only 8? A4: A config push changed the pool size.
- Q5: Why was that allowed? A5: Pool settings have no review gate.
- ROOT CAUSE: an unreviewed config change shrank the connection pool.

**Root cause statement:** A config push cut the connection pool from 40 to 8 [logs/action-handler.log:4410].

## 4. What Went Well

- [x] The breaker opened on its own [receipt 77aa0011]

## 5. What Went Wrong

- [x] Auto-scaling raised concurrency twice while the consumer was the bottleneck [receipt 77aa0012]

## 6. Action Items

### High (within 1 week)

- Alert when pool waiters exceed 20 for 30 s. Owner: SRE. Due: 2026-10-21. Status: Not Started.

## 7. Metrics & Impact

| Metric | Value | Evidence |
|---|---|---|
| Duration | 29 min | [receipt 5e0b7c1a] |
| Accounts Affected | 52 / 1,310 (4.0%) | [metrics/metrics.jsonl:1200] |

## 8. Follow-Up Items

| Item | Owner | Due Date | Status |
|---|---|---|---|
| Pool-waiter panel | SRE | 2026-10-28 | Not Started |

## 9. Lessons Learned

- A queue that keeps growing after a scale-up has a slow downstream.

## 10. Sign-Off

| Role | Name | Date |
|---|---|---|
| Incident Commander | R. Okafor | 2026-10-15 |

Status: FINAL
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), start=1) if needle in line)


def test_a_clean_review_has_no_findings():
    assert lint_text(CLEAN, "pir.md") == []


@pytest.mark.parametrize(
    "old,new,rule,needle",
    [
        ("A3: Requests queued for one of only 8 connections.", "A3: Human error: the on-call engineer forgot to check the pool.", "blame", "Human error"),
        ("- [x] Auto-scaling raised concurrency twice while the consumer was the bottleneck [receipt 77aa0012]", "- [x] The deploy was careless [receipt 77aa0012]", "blame", "careless"),
        ("- Q5: Why was that allowed? A5: Pool settings have no review gate.\n", "", "whys", "Q1: Why did the queue grow?"),
        ("- [x] The breaker opened on its own [receipt 77aa0011]", "", "no-positives", "## 4. What Went Well"),
        ("- Alert when pool waiters exceed 20 for 30 s. Owner: SRE.", "- Improve monitoring. Owner: SRE.", "vague-action", "Improve monitoring"),
        ("Owner: SRE. Due: 2026-10-21.", "Due: 2026-10-21.", "action-owner-date", "Alert when pool waiters"),
        ("Owner: SRE. Due: 2026-10-21.", "Owner: SRE.", "action-owner-date", "Alert when pool waiters"),
        ("| Pool-waiter panel | SRE | 2026-10-28 |", "| Pool-waiter panel |  | soon |", "action-owner-date", "Pool-waiter panel"),
        ("A1: Processing fell to 190 msgs/min against 350 ingest [metrics/metrics.jsonl:1188].", "A1: Processing fell to 190 msgs/min against 350 ingest.", "claim-without-data", "A1: Processing fell"),
        ("- **Impact:** 52 / 1,310 accounts (4.0%) [metrics/metrics.jsonl:1200]", "- **Impact:** 52 / 1,310 accounts (4.0%)", "claim-without-data", "**Impact:**"),
        ("- 09:05 UTC  Config push lowers DB_POOL_MAX from 40 to 8 [logs/action-handler.log:4410]", "- 09:05 UTC  Config push lowers DB_POOL_MAX from 40 to 8", "claim-without-data", "09:05 UTC"),
        ("- A queue that keeps growing after a scale-up has a slow downstream.", "- Many customers were hit hard.", "claim-without-data", "Many customers"),
        ("A4: A config push changed the pool size.", "A4: TODO", "placeholder", "A4: TODO"),
        ("## 9. Lessons Learned", "## 9. Lessons", "structure", "---"),
        ("status: FINAL", "status: DONE", "structure", "---"),
    ],
)
def test_each_anti_pattern_is_found_at_its_line(old, new, rule, needle):
    assert old in CLEAN
    text = CLEAN.replace(old, new, 1)
    findings = lint_text(text, "pir.md")
    assert findings, f"nothing found for {rule}"
    want = line_of(text, needle)
    hits = [f for f in findings if f.rule == rule]
    assert hits, [str(f) for f in findings]
    assert any(f.line == want for f in hits), ([str(f) for f in hits], want)
    assert all(str(f).startswith(f"pir.md:{f.line}: {f.rule}: ") for f in findings)


A4_LINE = "A4: A config push changed the pool size."


@pytest.mark.parametrize(
    "sentence",
    [
        "It was Bob's fault.",
        "Because it was Dave's mistake.",
        "Because the intern broke production.",
        "John pushed a bad config without review, his mistake.",
        "Alice’s mistake: the pool setting.",
        "That was Carol's error.",
        "Bob broke production with a config push.",
        "A junior engineer caused the outage.",
        "The new hire dropped the pool to 8.",
        "It was caused by the intern.",
    ],
)
def test_person_blame_is_found(sentence):
    """A person named as the cause (possessive fault or mistake, "<person> broke", a role noun as
    the one who broke or caused it) is blame, wherever in the review it is written."""
    text = CLEAN.replace(A4_LINE, f"A4: {sentence}", 1)
    hits = [f for f in lint_text(text, "pir.md") if f.rule == "blame"]
    assert [f.line for f in hits] == [line_of(text, sentence)], sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "The deploy broke the API.",
        "A missing review step let the config through.",
        "Deploy broke checkout for the pool.",
        "Revision 2 broke checkout.",
        "Postgres broke under load.",
        "Kafka's error rate rose past the threshold.",
        "The API's error budget was spent.",
        "The on-call engineer rolled back the deploy.",
        "The operator console showed the alert.",
    ],
)
def test_blameless_system_language_is_not_blame(sentence):
    text = CLEAN.replace(A4_LINE, f"A4: {sentence}", 1)
    assert [str(f) for f in lint_text(text, "pir.md") if f.rule == "blame"] == []


def test_fewer_than_five_whys_names_the_missing_answers():
    text = CLEAN.replace("A4: A config push changed the pool size.", "A4:").replace("- Q5: Why was that allowed? A5: Pool settings have no review gate.\n", "")
    msg = [f.message for f in lint_text(text) if f.rule == "whys"]
    assert msg == ["chain 1 has 3 answered why(s), fewer than five (missing or unanswered: A4, A5)"]


def test_citations_recognised():
    assert has_citation("x [receipt 1a2b3c4d]") and has_citation("x [logs/a.log:12; receipt 1a2b3c4d-99]")
    assert has_citation("x [span 3f2a9c1e12345678 of trace ab (t.jsonl#3)]") and has_citation("see [runbook](https://example.org/r)")
    assert not has_citation("- [x] done") and not has_citation("x [see above]") and not has_citation("x [receipt xyz]")


def test_cli_prints_file_line_rule_message_and_fails(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text(CLEAN.replace("A3: Requests queued for one of only 8 connections.", "A3: Operator error."))
    r = CliRunner().invoke(cli, ["pir", "lint", str(bad)])
    assert r.exit_code == 1
    assert r.output.strip() == f"{bad}:{line_of(bad.read_text(), 'Operator error')}: blame: 'Operator error' puts the cause on a person; describe the condition that allowed it"
    r = CliRunner().invoke(cli, ["pir", "lint", str(bad), "--ignore", "blame"])
    assert r.exit_code == 0 and "no findings" in r.output
    good = tmp_path / "good.md"
    good.write_text(CLEAN)
    r = CliRunner().invoke(cli, ["pir", "lint", str(good), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["findings"] == []


def test_cli_bad_input(tmp_path):
    r = CliRunner().invoke(cli, ["pir", "lint", str(tmp_path / "missing.md")])
    assert r.exit_code == 4 and r.output.startswith("ggen: ") and r.output.count("\n") == 1
    binary = tmp_path / "bin.md"
    binary.write_bytes(b"\xff\xfe\x00junk")
    r = CliRunner().invoke(cli, ["pir", "lint", str(binary)])
    assert r.exit_code == 1 and "not UTF-8" in r.output
    r = CliRunner().invoke(cli, ["pir", "lint", str(binary), "--ignore", "nonsense"])
    assert r.exit_code == 2
    hostile = tmp_path / "h.md"
    hostile.write_text(CLEAN.replace("A3: Requests queued", "A3: \x1b[2J blame \x1b[0m Requests queued"))
    r = CliRunner().invoke(cli, ["pir", "lint", str(hostile)])
    assert r.exit_code == 1 and "\x1b" not in r.output
    unclosed = tmp_path / "u.md"
    unclosed.write_text("---\ntitle: x\n")
    r = CliRunner().invoke(cli, ["pir", "lint", str(unclosed)])
    assert r.exit_code == 1 and ":1: structure: front matter is not closed" in r.output
