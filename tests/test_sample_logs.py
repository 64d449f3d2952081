"""Sample data sets: reproducible, and the injected fault and its mitigation visible in them."""
import gzip
import hashlib
import json
from pathlib import Path

import orjson
import pytest

from engine.datadir import DataDir
from engine.drill.sample import write_sample_set
from engine.drill.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = load_scenarios()


def lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return fh.read().splitlines()


def digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_scenario_and_seed_give_the_same_bytes(tmp_path):
    a = write_sample_set(SCENARIOS["errors-bad-config"], tmp_path / "a", seed=3, gzip=True)
    b = write_sample_set(SCENARIOS["errors-bad-config"], tmp_path / "b", seed=3, gzip=True)
    assert a == b
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_bad_deploy_is_visible_in_logs_traces_and_metrics(tmp_path):
    m = write_sample_set(SCENARIOS["errors-bad-deploy"], tmp_path, seed=1)
    fault_at = m["faults"][0]["injected_at"]
    assert m["faults"][0]["root_cause_service"] == "app"
    app = [json.loads(x) for x in lines(tmp_path / "logs" / "app.gcp.jsonl")]
    npe = [r for r in app if "NullPointerException" in r["jsonPayload"]["message"]]
    assert npe and min(r["timestamp"] for r in npe) >= fault_at
    deploys = [r for r in app if r["jsonPayload"]["message"].startswith("deploy: revision 1 -> 2")]
    rollbacks = [r for r in app if r["jsonPayload"]["message"].startswith("deploy: revision 2 -> 1")]
    assert len(deploys) == 1 and len(rollbacks) == 1
    assert deploys[0]["timestamp"] < rollbacks[0]["timestamp"] <= m["incidents"][0]["recovered_at"]
    # the edge sees the app's errors, attributed to it
    api = [json.loads(x) for x in lines(tmp_path / "logs" / "api.jsonl")]
    assert any("upstream app returned 5xx" in r["message"] for r in api)
    # metrics: app's error rate rises above 5 % after the fault and is back under 1 % at the end
    rows = [json.loads(x) for x in lines(tmp_path / "metrics" / "metrics.jsonl")]
    err = [(r["timestamp"], r["value"]) for r in rows if r["metric"] == "custom.governor/error_rate_percent" and r["service"] == "app"]
    assert max(v for t, v in err if t > fault_at) > 5
    assert err[-1][1] < 1
    # traces are OTLP/JSON with failing app spans during the incident
    spans = []
    for doc in map(json.loads, lines(tmp_path / "traces" / "traces.otlp.jsonl")):
        for rs in doc["resourceSpans"]:
            svc = rs["resource"]["attributes"][0]["value"]["stringValue"]
            for ss in rs["scopeSpans"]:
                spans += [(svc, s) for s in ss["spans"]]
    assert all(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 and s["startTimeUnixNano"].isdigit() for _, s in spans)
    assert any(svc == "app" and s["status"]["code"] == 2 for svc, s in spans)
    # the engine's own log has the alert
    engine_log = [json.loads(x) for x in lines(tmp_path / "logs" / "ggen-engine.jsonl")]
    assert any(r["msg"].startswith("ALERT error_rate_spike") for r in engine_log)


def test_slow_queries_show_in_the_database_syslog(tmp_path):
    write_sample_set(SCENARIOS["latency-slow-queries"], tmp_path, seed=1)
    db = lines(tmp_path / "logs" / "database.syslog")
    slow = [x for x in db if "statement: SELECT * FROM users" in x]
    assert slow and all(x.startswith("<") and " postgres " in x for x in db)
    assert "missing_index=idx_user_account" in slow[0]


def test_crash_loop_shows_stack_traces_in_log4j(tmp_path):
    write_sample_set(SCENARIOS["breaker-dependency-outage"], tmp_path, seed=1)
    gov = lines(tmp_path / "logs" / "governor.logfmt")
    assert any("circuit governor->action-handler CLOSED -> OPEN" in x for x in gov)
    assert any("HALF_OPEN -> CLOSED" in x for x in gov)


def test_receipts_are_signed_into_the_data_dir(tmp_path):
    from engine.receipts import KeyStore, Ledger, incidents_from_ledger

    dd = DataDir(tmp_path / "data")
    m = write_sample_set(SCENARIOS["region-outage"], tmp_path / "set", seed=2, data_dir=dd)
    led = Ledger.open(dd.ledger_path, KeyStore.open(dd.keys_dir), readonly=True)
    try:
        incs = incidents_from_ledger(led)
    finally:
        led.close()
    assert [i.incident_id for i in incs] == [x["id"] for x in m["incidents"]]


@pytest.mark.parametrize("name", ["queue-traffic-surge", "breaker-dependency-outage", "latency-slow-queries", "errors-bad-deploy", "region-outage"])
def test_committed_sets_are_complete(name):
    d = ROOT / "sample_logs" / name
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["scenario"] == name and manifest["drill_passed"]
    for f, info in manifest["files"].items():
        assert len(lines(d / f)) == info["lines"], f
