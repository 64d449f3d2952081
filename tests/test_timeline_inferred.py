"""A window without receipts (logs, traces and metrics ingested from elsewhere): the incident's
type, service and entity are inferred from the data (the alert log line, or without one the
series that met a runbook detection rule), and the phases, snapshots, chart and durations come
from the metrics alone, as the output says. With an incident id and no analyzer data, the
timeline falls back to the receipts alone, as `ggen pir create` does."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from analyzer.timeline import PHASE_ORDER, reconstruct_timeline
from analyzer.timeline.settings import load_timeline_settings
from console.cli.main import cli
from engine.clock import parse_iso_ms
from tests.timeline_support import SAMPLES, drilled


def _without_alert_lines(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "no-alert.duckdb"
    shutil.copy(db, out)
    con = duckdb.connect(str(out))
    con.execute("DELETE FROM events WHERE message LIKE 'ALERT %'")
    con.close()
    return out


@pytest.mark.parametrize("alert_line", [True, False], ids=["alert-line", "metrics-only"])
@pytest.mark.parametrize("name", SAMPLES)
def test_window_without_receipts_is_inferred_from_the_data(name, alert_line, tmp_path):
    case = drilled(name)
    m = case.manifest
    inc = m["incidents"][0]
    db = case.db if alert_line else _without_alert_lines(case.db, tmp_path)
    tl = reconstruct_timeline(db, start_ms=parse_iso_ms(m["window"]["from"]), end_ms=parse_iso_ms(m["window"]["to"]))
    assert tl.receipts == []
    f = tl.incident
    assert f is not None and f.inferred_from, name
    st = load_timeline_settings()
    assert (f.incident_type, f.entity, st.alias(f.service)) == (inc["type"], inc["entity"], st.alias(inc["service"]))
    assert ("alert log line" in f.inferred_from) == alert_line
    names = [p.name for p in tl.phases]
    for required in ("BASELINE", "FIRST ANOMALY", "ALERT TRIGGERED", "MITIGATION", "RECOVERING", "RECOVERED", "ALL CLEAR"):
        assert required in names, (name, names)
    ranks = [PHASE_ORDER.index(n) for n in names]
    assert ranks == sorted(ranks), names
    assert all(p.snapshot and any(v is not None for v in p.snapshot.values()) for p in tl.phases), [(p.name, p.snapshot) for p in tl.phases]
    assert tl.chart and tl.chart_title
    mttr = tl.duration("MTTR")
    assert mttr is not None and mttr.data_ms is not None and mttr.receipt_ms is None
    assert tl.metric_interval_ms is not None
    assert abs(mttr.data_ms - inc["mttr_ms"]) <= tl.metric_interval_ms, (mttr.data_ms, inc["mttr_ms"])
    ttd = tl.duration("time to detect")
    assert ttd is not None and ttd.data_ms is not None and ttd.data_ms >= 0
    assert any("from the data alone" in n for n in tl.notes)
    if alert_line:  # the alert line's own time is the detection
        assert tl.phase("ALERT TRIGGERED").at_ms == parse_iso_ms(inc["detected_at"])  # type: ignore[union-attr]


def test_cli_window_without_receipts_says_it_is_from_the_data_alone(tmp_path):
    """The audit's case: the committed sample set ingested into a fresh database, no ledger."""
    case = drilled("errors-bad-deploy")
    m = case.manifest
    args = ["--data-dir", str(tmp_path / "empty"), "timeline", "--from", m["window"]["from"], "--to", m["window"]["to"], "--db", str(case.db)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.startswith("Incident inferred from the data alone (no receipts): error_rate_spike Sev2 on app (service app)")
    for phase in ("RECOVERING", "RECOVERED", "ALL CLEAR"):
        assert f"  {phase}" in out
    assert "CHART error rate %" in out and "recovery not seen in the metrics" not in out
    assert "note: no receipts for this window" in out and "come from the data alone" in out
    mttr = next(line for line in out.splitlines() if line.startswith("  MTTR"))
    assert mttr.split()[1] != "-", mttr
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert all(p["snapshot"] for p in data["phases"])
    md = CliRunner().invoke(cli, [*args, "--format", "md"]).stdout
    assert md.startswith("# Timeline: error_rate_spike (inferred from the data)")


@pytest.fixture()
def no_db_data_dir(tmp_path):
    """A copy of a drilled data directory (ledger and keys) without its analyzer database."""
    case = drilled("errors-bad-deploy")
    root = tmp_path / "data"
    shutil.copytree(case.data_dir.root, root)
    (root / case.data_dir.analyzer_db_path.name).unlink()
    return case, root


def test_incident_without_analyzer_data_falls_back_to_the_receipts(no_db_data_dir):
    case, root = no_db_data_dir
    r = CliRunner().invoke(cli, ["--data-dir", str(root), "timeline", "--incident-id", case.incident_id])
    assert r.exit_code == 0, r.output
    assert r.stderr.strip() == "ggen: warning: no logs, traces or metrics for this incident: the timeline comes from its receipts alone"
    out = r.stdout
    assert out.startswith(f"Incident {case.incident_id}: error_rate_spike")
    assert "ALERT TRIGGERED" in out and "MITIGATION" in out and "ALL CLEAR" in out
    assert "note: built from the receipts alone:" in out and "no analyzer database" in out
    data = json.loads(CliRunner().invoke(cli, ["--data-dir", str(root), "timeline", "--incident-id", case.incident_id, "--json"]).stdout)
    assert data["data"]["counts"]["receipts"] > 0 and data["data"]["counts"]["log_records"] == 0
    assert any(n.startswith("built from the receipts alone") for n in data["notes"])


def test_fallback_keeps_real_errors(no_db_data_dir, tmp_path):
    """An unknown incident stays not found (4), and a --db named on the command line that is not
    there stays an error (a typo must not silently lose the logs)."""
    case, root = no_db_data_dir
    r = CliRunner().invoke(cli, ["--data-dir", str(root), "timeline", "--incident-id", "deadbeefdeadbeef"])
    assert r.exit_code == 4 and "no incident matches" in r.output
    r = CliRunner().invoke(cli, ["--data-dir", str(root), "timeline", "--incident-id", case.incident_id, "--db", str(tmp_path / "typo.duckdb")])
    assert r.exit_code == 4 and "no analyzer database" in r.output
