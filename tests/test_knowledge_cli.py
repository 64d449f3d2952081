"""`ggen knowledge ...` as on-call engineers type it: flags, JSON output, exit codes, escaping."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from analyzer.knowledge.synthetic import synthetic_entry
from console.cli.main import cli

FIXTURE = Path(__file__).parent / "data" / "knowledge_pir_final.md"


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GGEN_KNOWLEDGE_DIRS", raising=False)
    data = tmp_path / "data"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)

    invoke.data = data  # type: ignore[attr-defined]
    return invoke


def js(r: Result) -> dict:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_runbook_command_works_exactly_as_written(run) -> None:
    r = run("knowledge", "search", "--symptoms", "latency spike p99")
    assert r.exit_code == 0, r.output
    assert "Latency spike - " in r.stdout
    assert "root cause:" in r.stdout and "solution:" in r.stdout and "MTTR" in r.stdout and "prevention:" in r.stdout


def test_symptom_and_symptoms_are_the_same_flag(run) -> None:
    a = js(run("knowledge", "search", "--symptoms", "queue depth not draining", "--json"))
    b = js(run("knowledge", "search", "--symptom", "queue depth not draining", "--json"))
    assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]] and a["hits"]
    assert a["query"]["symptoms"] == "queue depth not draining"


def test_search_json_shape_and_flags(run) -> None:
    out = js(
        run(
            "knowledge", "search", "--root-cause", "config", "--type", "error,latency", "--severity", "Sev2",
            "--since", "2025-06-01", "--until", "2025-12-31", "--limit", "3", "--json",
        )
    )
    assert 1 <= len(out["hits"]) <= 3 and out["total"] >= len(out["hits"])
    for h in out["hits"]:
        assert set(h["incident_types"]) & {"error_rate_spike", "latency_spike"}
        assert h["severity"] == "Sev2" and "2025-06-01" <= h["date"] <= "2025-12-31"
        for key in ("root_cause", "solution", "mttr_min", "prevention", "snippet", "customers_affected"):
            assert key in h
    assert out["warning"] is None and out["query"]["types"] == ["error_rate_spike", "latency_spike"]
    sol = js(run("knowledge", "search", "--solution", "disable the flag", "--limit", "1", "--json"))
    assert sol["hits"][0]["id"] == "incident-error-rate-spike-feature-flag-2026-01-08"
    pos = js(run("knowledge", "search", "idx_user_account", "--json"))
    assert pos["hits"][0]["id"] == "incident-latency-spike-missing-index-2025-04-09"


def test_syntax_errors_warn_on_stderr_and_in_json(run) -> None:
    r = run("knowledge", "search", "--symptoms", 'latency "spike AND')
    assert r.exit_code == 0
    assert re.search(r"^ggen: warning: query syntax: unbalanced quote", r.stderr, re.M)
    assert "Latency spike" in r.stdout
    out = js(run("knowledge", "search", "--symptoms", "queue ( depth", "--json"))
    assert out["warning"].startswith("query syntax:") and out["hits"]


def test_bad_flags_are_usage_errors(run) -> None:
    for args in (["--type", "bogus"], ["--severity", "Sev9"], ["--since", "last tuesday"], ["--limit", "0"], ["--cause", "gremlins"]):
        r = run("knowledge", "search", "--symptoms", "x", *args)
        assert r.exit_code == 2, (args, r.output)
    r = run("knowledge", "search", "--since", "2026-02-01", "--until", "2026-01-01")
    assert r.exit_code == 2 and "after --until" in r.output


def test_relative_dates(run) -> None:
    out = js(run("knowledge", "search", "--since", "100000d", "--json", "--limit", "1000"))
    assert out["total"] == 36


def test_zero_results(run) -> None:
    r = run("knowledge", "search", "--symptoms", "zzqqxx")
    assert r.exit_code == 0 and "No entries match" in r.stdout and "knowledge gap" in r.stdout


def test_show_by_id_uuid_and_path(run) -> None:
    a = run("knowledge", "show", "incident-latency-spike-missing-index-2025-04-09")
    assert a.exit_code == 0 and "idx_user_account" in a.stdout and "## Resolution" in a.stdout
    b = js(run("knowledge", "show", "f6297d4c-44bd-4f14-b2e2-05922621d208", "--json"))
    assert b["id"] == "incident-latency-spike-missing-index-2025-04-09" and b["meta"]["severity"] == "Sev2"
    path = b["path"]
    c = js(run("knowledge", "show", path, "--json"))
    assert c["sha256"] == b["sha256"] and set(c["sections"]) >= {"Symptoms", "Timeline"}
    r = run("knowledge", "show", "incident-nope-2026-01-01")
    assert r.exit_code == 4 and r.stderr.startswith("ggen: no knowledge-base entry")


def test_list_filters_and_order(run) -> None:
    out = js(run("knowledge", "list", "--json"))
    assert out["total"] == 36
    dates = [h["date"] for h in out["hits"]]
    assert dates == sorted(dates, reverse=True)
    r = run("knowledge", "list", "--type", "failover", "--severity", "1")
    assert r.exit_code == 0
    lines = [x for x in r.stdout.splitlines() if x.startswith("20")]
    assert lines and all("Sev1" in x and "region-failover" in x for x in lines)


def test_entries_option_and_escaping_of_hostile_entry_text(run, tmp_path: Path) -> None:
    d = tmp_path / "team"
    d.mkdir()
    name, text = synthetic_entry(5, title="Latency spike - \x1b[31mred alert\x1b[0m [bold]markup[/bold]")
    (d / name).write_text(text)
    out = run("knowledge", "--entries", str(d), "list")
    assert out.exit_code == 0 and "\x1b" not in out.stdout and "\\x1b[31mred alert" in out.stdout
    assert "[bold]markup[/bold]" in out.stdout
    shown = run("knowledge", "--entries", str(d), "show", name[:-3])
    assert "\x1b" not in shown.stdout
    found = run("knowledge", "--entries", str(d), "search", "--text", "red alert")
    assert "\x1b" not in found.stdout and name[:-3] in found.stdout


def test_check_reports_broken_entries(run, tmp_path: Path) -> None:
    assert run("knowledge", "check").exit_code == 0
    d = tmp_path / "team"
    d.mkdir()
    name, text = synthetic_entry(6)
    (d / name).write_text(text.replace("severity: Sev", "severity: Level", 1))
    name2, text2 = synthetic_entry(7, related_incidents=["incident-missing-2025-01-01"])
    (d / name2).write_text(text2)
    r = run("knowledge", "--entries", str(d), "check")
    assert r.exit_code == 1
    assert f"{d / name}: field severity" in r.stderr
    assert "field related_incidents: no entry incident-missing-2025-01-01" in r.stderr
    s = run("knowledge", "--entries", str(d), "search", "--symptoms", "anything")
    assert s.exit_code == 0 and "field severity" in s.stderr and "(entry skipped)" in s.stderr


def test_add_from_pir_and_refusals(run, tmp_path: Path) -> None:
    draft = tmp_path / "draft.md"
    draft.write_text(FIXTURE.read_text().replace("status: FINAL", "status: DRAFT"))
    r = run("knowledge", "add", "--from-pir", str(draft))
    assert r.exit_code == 5 and "still a DRAFT" in r.stderr and "--allow-draft" in r.stderr
    out = js(run("knowledge", "add", "--from-pir", str(FIXTURE), "--json"))
    assert out["indexed"] and out["related_incidents"][0] == "incident-queue-backlog-slow-consumer-2026-01-25"
    assert Path(out["path"]).parent == run.data / "knowledge-base"
    again = run("knowledge", "add", "--from-pir", str(FIXTURE))
    assert again.exit_code == 5 and "already exists" in again.stderr
    assert run("knowledge", "add", "--from-pir", str(FIXTURE), "--force").exit_code == 0
    hits = js(run("knowledge", "search", "--symptoms", "DB_POOL_MAX", "--json"))["hits"]
    assert hits[0]["id"] == out["id"]
    missing = run("knowledge", "add", "--from-pir", str(tmp_path / "nope.md"))
    assert missing.exit_code == 4 and "no such PIR file" in missing.stderr


def test_stats_and_reindex(run) -> None:
    run("knowledge", "search", "--symptoms", "queue depth")
    run("knowledge", "search", "--symptoms", "zzqqxx")
    run("knowledge", "search", "--symptoms", "zzqqxx")
    s = js(run("knowledge", "stats", "--json"))
    assert s["entries"] == 36 and s["queries"]["total"] == 3 and s["queries"]["zero_result"] == 2
    assert s["queries"]["zero_result_rate_pct"] == pytest.approx(66.7)
    assert s["queries"]["gaps"][0] == {"query": "--symptoms 'zzqqxx'", "count": 2}
    assert s["symptom_coverage"]["overall_pct"] >= 80
    human = run("knowledge", "stats")
    assert human.exit_code == 0 and "Symptom coverage" in human.stdout and "Solution patterns" in human.stdout
    rx = js(run("knowledge", "reindex", "--json"))
    assert rx["rebuilt"] and len(rx["added"]) == 36


def test_help_lists_the_group(run) -> None:
    r = run("--help")
    assert "knowledge" in r.stdout
    h = run("knowledge", "search", "--help")
    assert "--symptoms" in h.stdout and "--symptom" in h.stdout and "--root-cause" in h.stdout
