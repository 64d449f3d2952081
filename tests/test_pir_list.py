"""`ggen pir list`: drafts with their status and due date by severity (Sev1 4 h, Sev2 24 h,
Sev3 48 h after resolution, Sev4 optional), overdue ones first; broken files listed, not fatal."""
from __future__ import annotations

import json

from click.testing import CliRunner

from analyzer.pir import list_pirs, read_status
from console.cli.main import cli
from engine.clock import parse_iso_ms
from engine.policy.bundle import load_policy

RESOLVED = "2026-01-25T14:00:00Z"


def pir(dirpath, name, severity, status, resolved=RESOLVED):
    p = dirpath / name
    res = f'"{resolved}"' if resolved else "null"
    p.write_text(
        f"---\nincident_id: urn:uuid:00000000-0000-4000-8000-{name[:12].ljust(12, '0').encode().hex()[:12]}\n"
        f"title: {name}\nseverity: {severity}\nincident_type: latency_spike\nstatus: {status}\n"
        f'detected_at: "2026-01-25T13:50:00Z"\nresolved_at: {res}\nservice: app\n---\n\n# PIR\n'
    )
    return p


def test_due_dates_by_severity_and_overdue(tmp_path):
    policy = load_policy()
    now = parse_iso_ms("2026-01-25T20:00:00Z")  # 6 h after resolution
    d = tmp_path
    pir(d, "sev1.md", "Sev1", "DRAFT")
    pir(d, "sev2.md", "Sev2", "DRAFT")
    pir(d, "sev3.md", "Sev3", "DRAFT")
    pir(d, "sev4.md", "Sev4", "DRAFT")
    pir(d, "sev1-final.md", "Sev1", "FINAL")
    pir(d, "open.md", "Sev1", "DRAFT", resolved=None)
    rows = {p.path.rsplit("/", 1)[1]: p for p in list_pirs(d, policy, now)}
    res = parse_iso_ms(RESOLVED)
    assert rows["sev1.md"].due_ms == res + 4 * 3600_000 and rows["sev1.md"].overdue and rows["sev1.md"].due_state == "OVERDUE"
    assert rows["sev2.md"].due_ms == res + 24 * 3600_000 and not rows["sev2.md"].overdue and rows["sev2.md"].due_state == "due"
    assert rows["sev3.md"].due_ms == res + 48 * 3600_000 and not rows["sev3.md"].overdue
    assert rows["sev4.md"].due_ms is None and rows["sev4.md"].due_state == "optional"
    assert not rows["sev1-final.md"].overdue and rows["sev1-final.md"].due_state == "done"
    assert rows["open.md"].due_state == "incident open"
    # overdue first
    assert list_pirs(d, policy, now)[0].path.endswith("sev1.md")
    # two days later the Sev2 is overdue too, the FINAL never is
    later = {p.path.rsplit("/", 1)[1]: p for p in list_pirs(d, policy, now + 48 * 3600_000)}
    assert later["sev2.md"].overdue and later["sev3.md"].overdue and not later["sev1-final.md"].overdue


def test_broken_files_are_listed_with_what_is_wrong(tmp_path):
    policy = load_policy()
    (tmp_path / "nofm.md").write_text("# just markdown\n")
    (tmp_path / "badyaml.md").write_text("---\ntitle: [unclosed\n---\n")
    (tmp_path / "badstatus.md").write_text("---\nstatus: DONE\nseverity: Sev2\n---\n")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00")
    rows = {p.path.rsplit("/", 1)[1]: p for p in list_pirs(tmp_path, policy, 0)}
    assert "front matter" in rows["nofm.md"].error
    assert "invalid YAML" in rows["badyaml.md"].error
    assert "DONE" in rows["badstatus.md"].error
    assert "cannot read" in rows["binary.md"].error
    assert read_status(tmp_path / "nofm.md", policy, 0).due_state == "unreadable"


def test_cli_lists_the_data_dir_drafts(tmp_path):
    dd = tmp_path / "dd"
    (dd / "pirs").mkdir(parents=True)
    pir(dd / "pirs", "a.md", "Sev1", "DRAFT")
    pir(dd / "pirs", "b.md", "Sev2", "APPROVED")
    (dd / "pirs" / "c.md").write_text("---\ntitle: \x1b[31mred\n---\n")
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "list"])
    assert r.exit_code == 0, r.output
    assert "a.md" in r.output and "OVERDUE" in r.output and "APPROVED" in r.output and "\x1b" not in r.output
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "list", "--json"])
    data = json.loads(r.output)
    assert [x["path"].rsplit("/", 1)[1] for x in data][0] == "a.md"
    assert {x["status"] for x in data if not x["error"]} == {"DRAFT", "APPROVED"}
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "empty"), "pir", "list"])
    assert r.exit_code == 0 and "no PIRs" in r.output


def test_a_created_draft_shows_in_the_list(tmp_path):
    import shutil

    from tests.timeline_support import drilled

    case = drilled("latency-slow-queries")
    dd = tmp_path / "dd"
    shutil.copytree(case.data_dir.root, dd)
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "create", "--incident-id", case.incident_id, "--title", "Slow queries", "--no-knowledge"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["--data-dir", str(dd), "pir", "list", "--json"])
    rows = json.loads(r.output)
    assert len(rows) == 1 and rows[0]["status"] == "DRAFT" and rows[0]["severity"] == "Sev2"
    assert rows[0]["due_at"] == "2026-01-26T14:08:58.000Z"  # resolved 14:08:58 + 24 h
    assert rows[0]["overdue"] is True  # the sample incident is in the past
