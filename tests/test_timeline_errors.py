"""`ggen timeline` on bad input: one-line errors with exit codes, never a traceback; and the
window mode, the service filter and the output formats."""
from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from click.testing import CliRunner

from analyzer.timeline import TimelineBadInput, TimelineError, TimelineNotFound, reconstruct_timeline
from console.cli.main import cli
from engine.clock import parse_iso_ms
from tests.timeline_support import drilled


@pytest.fixture(scope="module")
def case():
    return drilled("errors-bad-deploy")


def run(case, *args: str):
    return CliRunner().invoke(cli, ["--data-dir", str(case.data_dir.root), "timeline", *args])


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.output.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ggen: "), result.output
    assert "Traceback" not in result.output
    return err[0]


def test_incident_by_prefix_in_every_format(case, tmp_path):
    prefix = case.incident_id.removeprefix("urn:uuid:")[:8]
    r = run(case, "--incident-id", prefix)
    assert r.exit_code == 0, r.output
    assert "ALERT TRIGGERED" in r.output and "CAUSE CHAIN" in r.output
    r = run(case, "--incident-id", case.incident_id, "--format", "md")
    assert r.exit_code == 0 and r.output.startswith("# Timeline: error_rate_spike")
    r = run(case, "--incident-id", case.incident_id, "--json")
    data = json.loads(r.output)
    assert data["incident"]["incident_id"] == case.incident_id and data["causes"][0]["service"] == "app"
    out = tmp_path / "t.md"
    r = run(case, "--incident-id", case.incident_id, "--format", "md", "--output", str(out))
    assert r.exit_code == 0 and out.read_text().startswith("# Timeline")


def test_window_mode_finds_the_incident_of_the_window(case):
    m = case.manifest
    r = run(case, "--from", m["window"]["from"], "--to", m["window"]["to"], "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["incident"]["incident_id"] == case.incident_id
    assert data["window"]["from_ms"] == parse_iso_ms(m["window"]["from"])


def test_window_mode_without_a_ledger_uses_the_data_alone(case, tmp_path):
    """Logs ingested elsewhere, no receipts: the alert comes from the alert log line, and the
    incident it names is inferred from the data (and says so)."""
    m = case.manifest
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "empty"), "timeline", "--db", str(case.db), "--from", m["window"]["from"], "--to", m["window"]["to"], "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["receipts"] == []
    assert data["incident"]["incident_type"] == "error_rate_spike" and data["incident"]["inferred_from"].startswith("the alert log line")
    names = [p["name"] for p in data["phases"]]
    assert names[:3] == ["BASELINE", "FIRST ANOMALY", "ALERT TRIGGERED"] and "MITIGATION" in names
    assert data["causes"][0]["service"] == "app"


def test_service_filter_keeps_only_that_service(case):
    r = run(case, "--incident-id", case.incident_id, "--service", "api", "--json")
    data = json.loads(r.output)
    assert {e["service"] for e in data["evidence"] if e["source"] != "receipt"} <= {"api"}
    assert any("limited to service api" in n for n in data["notes"])


def test_unknown_service_is_warned_about_on_stderr(case):
    """--service that no log, trace or metric names: one warning line on standard error, and the
    timeline still prints (phases and ranking use every service)."""
    m = case.manifest
    r = CliRunner().invoke(cli, ["--data-dir", str(case.data_dir.root), "timeline", "--from", m["window"]["from"], "--to", m["window"]["to"], "--service", "nosuch", "--json"])
    assert r.exit_code == 0, r.output
    assert r.stderr.strip() == "ggen: warning: no log, trace or metric in the window names the service 'nosuch': nothing to show for it"
    data = json.loads(r.stdout)
    assert data["warnings"] and data["phases"]
    for known in ("app", "edge"):  # edge is how the access log names api
        r = CliRunner().invoke(cli, ["--data-dir", str(case.data_dir.root), "timeline", "--from", m["window"]["from"], "--to", m["window"]["to"], "--service", known, "--json"])
        assert r.exit_code == 0 and r.stderr == "", (known, r.stderr)


def test_unknown_incident_id(case):
    line = one_line_error(run(case, "--incident-id", "deadbeefdeadbeef"), 4)
    assert "no incident matches" in line


def test_malformed_incident_id(case):
    one_line_error(run(case, "--incident-id", "xyz"), 4)


def test_empty_window(case):
    line = one_line_error(run(case, "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T00:30:00Z"), 4)
    assert "no logs, traces or metrics between 2020-01-01T00:00:00.000Z and 2020-01-01T00:30:00.000Z" in line


def test_window_end_before_start(case):
    """A window that ends before it starts is a bad argument (2), in the CLI and the library."""
    line = one_line_error(run(case, "--from", "2026-01-25T14:30:00Z", "--to", "2026-01-25T14:00:00Z"), 2)
    assert "empty" in line and "--from 2026-01-25T14:30:00.000Z" in line
    one_line_error(run(case, "--from", "2026-01-25T14:00:00Z", "--to", "2026-01-25T14:00:00Z"), 2)
    with pytest.raises(TimelineBadInput):
        reconstruct_timeline(case.db, start_ms=parse_iso_ms("2026-01-25T14:30:00Z"), end_ms=parse_iso_ms("2026-01-25T14:00:00Z"))


def test_missing_db(case, tmp_path):
    line = one_line_error(run(case, "--incident-id", case.incident_id, "--db", str(tmp_path / "none.duckdb")), 4)
    assert "no analyzer database" in line and "ggen ingest" in line


def test_corrupt_db(case, tmp_path):
    """A file that is not a DuckDB database at all is a bad --db argument (2)."""
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"\x00garbage" * 4096)
    line = one_line_error(run(case, "--incident-id", case.incident_id, "--db", str(bad)), 2)
    assert str(bad) in line and "not an analyzer database" in line


@pytest.mark.parametrize("name,body", [("x.csv", b"a,b\n1,2\n"), ("x.parquet", b"PAR1"), ("empty.duckdb", b""), ("x.json", b'{"a": 1}')])
def test_db_that_is_not_a_duckdb_file(case, tmp_path, name, body):
    """DuckDB opens some files by their name (a .csv as a query) and fails about something else
    ("Cannot launch in-memory database in read-only mode"): the message names the file instead."""
    f = tmp_path / name
    f.write_bytes(body)
    m = case.manifest
    line = one_line_error(run(case, "--from", m["window"]["from"], "--to", m["window"]["to"], "--db", str(f)), 2)
    assert line == f"ggen: {f}: not an analyzer database (not a DuckDB file; `ggen ingest` makes one)"


def test_truncated_db(case, tmp_path):
    cut = tmp_path / "cut.duckdb"
    data = case.db.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    one_line_error(run(case, "--incident-id", case.incident_id, "--db", str(cut)), 1)


def test_db_that_is_not_an_analyzer_db(case, tmp_path):
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    line = one_line_error(run(case, "--incident-id", case.incident_id, "--db", str(other)), 2)
    assert "not an analyzer database" in line


def test_no_ledger_for_an_incident_id(case, tmp_path):
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "nothing"), "timeline", "--incident-id", case.incident_id, "--db", str(case.db)])
    line = one_line_error(r, 4)
    assert "no ledger" in line


def test_usage_errors(case):
    one_line_error(run(case), 2)
    one_line_error(run(case, "--incident-id", case.incident_id, "--from", "1h"), 2)
    r = run(case, "--from", "not-a-time")
    assert r.exit_code == 2


def test_library_errors_are_typed(case, tmp_path):
    with pytest.raises(TimelineNotFound):
        reconstruct_timeline(tmp_path / "x.duckdb", start_ms=0, end_ms=1000)
    with pytest.raises(TimelineError):
        reconstruct_timeline(case.db)
    led = case.ledger()
    try:
        with pytest.raises(TimelineNotFound):
            reconstruct_timeline(case.db, incident_id="0123456789ab", ledger=led)
    finally:
        led.close()


def test_hostile_log_text_is_escaped(case, tmp_path):
    """A log line with terminal escape codes shows as text, not as live escapes."""
    root = tmp_path / "hostile"
    shutil.copytree(case.data_dir.root, root)
    con = duckdb.connect(str(root / "analyzer.duckdb"))
    con.execute(
        "INSERT INTO events SELECT ts + INTERVAL 5 MINUTE, level, raw_level, service, host, "
        "'deploy: revision 7 -> 8 ' || chr(27) || '[31mRED' || chr(27) || '[0m', trace_id, span_id, request_id, attrs, source_file, source_line "
        "FROM events WHERE message LIKE 'deploy: revision 1 -> 2%'"
    )
    con.close()
    r = CliRunner().invoke(cli, ["--data-dir", str(root), "timeline", "--incident-id", case.incident_id])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\\x1b[31mRED" in r.output
