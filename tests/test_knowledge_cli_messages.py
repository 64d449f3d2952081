"""`ggen knowledge` errors and reports: exit codes as the README lists them (2 bad argument,
4 not found), and long queries cut short on the terminal but kept whole in the query log."""
from __future__ import annotations

import json
from pathlib import Path

from test_knowledge_cli import FIXTURE, run  # noqa: F401  (the CLI fixture of the knowledge tests)

from analyzer.knowledge import CAUSES
from analyzer.knowledge.stats import query_log_path
from engine.datadir import DataDir


def test_add_from_a_missing_pir_is_not_found(run, tmp_path: Path) -> None:
    r = run("knowledge", "add", "--from-pir", str(tmp_path / "nope.md"))
    assert r.exit_code == 4, r.output
    assert r.stderr.startswith("ggen: ") and "nope.md" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_add_with_an_unknown_cause_is_a_usage_error_listing_the_causes(run) -> None:
    r = run("knowledge", "add", "--from-pir", str(FIXTURE), "--cause", "nosuch")
    assert r.exit_code == 2, r.output
    assert "nosuch" in r.output and all(c in r.output for c in CAUSES)
    assert not (run.data / "knowledge-base").exists()  # nothing written
    ok = run("knowledge", "add", "--from-pir", str(FIXTURE), "--cause", "bad-config", "--json")
    assert ok.exit_code == 0, ok.output


def test_long_zero_result_queries_are_cut_short_on_screen_and_kept_whole_in_the_log(run) -> None:
    query = "zzqx" * 500  # 2,000 characters of nothing any entry says
    r = run("knowledge", "search", "--symptoms", query)
    assert r.exit_code == 0 and "No entries match" in r.stdout
    assert r.stderr and max(len(line) for line in r.stderr.splitlines()) < 300, r.stderr
    assert "characters)" in r.stderr
    logged = [json.loads(x) for x in query_log_path(DataDir(run.data)).read_bytes().splitlines()]
    assert logged[-1]["query"]["symptoms"] == query  # the log keeps it whole

    human = run("knowledge", "stats")
    gap = [line for line in human.stdout.splitlines() if "gap x" in line]
    assert gap and max(len(line) for line in gap) < 200, gap
    out = json.loads(run("knowledge", "stats", "--json").stdout)
    assert len(out["queries"]["gaps"][0]["query"]) < 200


def test_gap_lines_name_the_search_flags(run) -> None:
    run("knowledge", "search", "--symptoms", "zzqqxx", "--service", "nosuch", "--type", "latency", "--cause", "bad_deploy", "--severity", "Sev2")
    gaps = json.loads(run("knowledge", "stats", "--json").stdout)["queries"]["gaps"]
    assert gaps[0]["query"] == "--symptoms 'zzqqxx' --type latency_spike --severity Sev2 --cause bad_deploy --service nosuch"
    assert "--services" not in run("knowledge", "stats").stdout
