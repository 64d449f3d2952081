"""The Alertmanager source over real HTTP: version-4 payloads open incidents (type, entity and
severity from the mapping), repeats are deduplicated on the fingerprint, several alerts on one
entity share its incident, `resolved` resolves, and anything unmappable or malformed is refused
with a reason (never silently). Virtual-clock engine, real listener."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from engine.clock import VirtualClock, iso_utc
from engine.core import Engine
from engine.datadir import DataDir
from engine.policy.loader import load_model
from engine.sources.alertmanager import AlertmanagerSource, parse_alert_time
from engine.sources.mapping import AlertmanagerMapping, load_alertmanager_mapping
from sources_support import ggen

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(src: AlertmanagerSource, body, *, path: str = "/alerts", headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    host, port = src.address
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with OPENER.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def alert(name: str, status: str = "firing", fp: str = "fp1", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} on {labels.get('service', '?')}"},
        "startsAt": "2026-01-01T00:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T00:05:10Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }


def payload(*alerts: dict, version: str = "4") -> dict:
    return {"version": version, "groupKey": "{}:{}", "status": alerts[0]["status"] if alerts else "firing", "receiver": "ggen", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "alerts": list(alerts)}


@pytest.fixture
def setup(tmp_path):
    made = []

    def make(mapping: AlertmanagerMapping | None = None, ledger: bool = False, **kw):
        if mapping is None:
            _, mapping = load_alertmanager_mapping()
        src = AlertmanagerSource("127.0.0.1:0", mapping, path="/alerts", **kw)
        eng = Engine(clock=VirtualClock(1767225600000 + 300_000), seed=5)  # 00:05 UTC, after the alerts' startsAt
        src.bind(eng)
        sink = None
        if ledger:
            from engine.receipts import KeyStore, Ledger, ReceiptSink

            dd = DataDir(tmp_path / "data").ensure()
            keys = KeyStore.open_or_init(dd.keys_dir, now_ms=eng.now_ms)
            sink = (dd, Ledger.open(dd.ledger_path, keys))
            eng.subscribe(ReceiptSink(sink[1], keys, eng.policy.policy_hashes, eng.clock))
        src.start()
        made.append(src)
        return src, eng, sink

    yield make
    for s in made:
        s.stop()


def test_firing_opens_repeats_dedupe_and_resolved_resolves(setup):
    src, eng, (dd, ledger) = setup(ledger=True)
    code, body = post(src, payload(alert("GgenHighErrorRate", service="app", severity="warning")))
    assert code == 200 and body["alerts"][0]["result"] == "opened"
    inc = eng.get_incident(body["alerts"][0]["incident_id"])
    assert (inc.type, inc.entity, inc.severity) == ("error_rate_spike", "app", "Sev3")
    det = inc.events[0]
    assert det.kind == "incident.detected" and det.observed_at_ms == parse_alert_time("2026-01-01T00:00:00.123Z")
    assert det.data["fingerprint"] == "fp1" and det.data["labels"]["severity"] == "warning"
    for _ in range(3):  # Alertmanager re-sends the group
        code, body = post(src, payload(alert("GgenHighErrorRate", service="app", severity="warning")))
        assert body["alerts"][0]["result"] == "deduplicated"
    assert len(eng.incidents) == 1 and sum(e.kind == "incident.detected" for e in inc.events) == 1
    code, body = post(src, payload(alert("GgenHighErrorRate", service="app", severity="critical")))
    assert body["alerts"][0]["result"] == "deduplicated" and inc.severity == "Sev1"
    assert [(e.data["from"], e.data["to"]) for e in inc.events if e.kind == "incident.classified"] == [("Sev3", "Sev1")]
    eng.run_for(30_000)
    seen = max(e.observed_at_ms for e in inc.events)
    code, body = post(src, payload(alert("GgenHighErrorRate", "resolved", service="app")))
    assert body["alerts"][0]["result"] == "resolved" and not inc.open
    last = inc.events[-1]
    assert last.kind == "recovery.verified" and last.data["resolved_by"] == "alert_resolved"
    # Recovered at the alert's endsAt, but never before what the incident's log already holds
    # (receipts of one incident never go back in time).
    assert last.observed_at_ms == inc.recovered_at_ms == max(parse_alert_time("2026-01-01T00:05:10Z"), seen)
    assert last.data["mttr_ms"] == inc.recovered_at_ms - inc.detected_at_ms
    assert post(src, payload(alert("GgenHighErrorRate", "resolved", service="app")))[1]["alerts"][0]["result"] == "resolved_unknown"
    # Firing again after the resolution is a new incident.
    assert post(src, payload(alert("GgenHighErrorRate", service="app")))[1]["alerts"][0]["result"] == "opened"
    assert (src.counts["opened"], src.counts["deduplicated"], src.counts["resolved"], src.counts["resolved_unknown"]) == (2, 4, 1, 1)
    ledger.close()
    done = ggen("--data-dir", str(dd.root), "incidents", "verify", "--all")
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_on_one_entity_share_its_incident_until_all_resolve(setup):
    src, eng, _ = setup()
    a1 = alert("GgenHighErrorRate", fp="a1", service="api", severity="error")
    a2 = alert("Api5xxBurst", fp="a2", service="api", severity="error")
    body = post(src, payload(a1, a2))[1]
    assert [x["result"] for x in body["alerts"]] == ["opened", "joined"]
    inc = eng.get_incident(body["alerts"][0]["incident_id"])
    assert body["alerts"][1]["incident_id"] == inc.id
    post(src, payload(dict(a1, status="resolved")))
    assert inc.open and inc.events[-1].kind == "incident.note"
    post(src, payload(dict(a2, status="resolved")))
    assert not inc.open and inc.events[-1].kind == "recovery.verified"


def test_typed_alerts_queue_circuit_and_region_entities(setup):
    src, eng, _ = setup()
    body = post(src, payload(
        alert("AnythingAtAll", fp="q", ggen_type="queue_backlog_overflow", tenant="acct-1001", severity="high"),
        alert("BreakerOpen", fp="c", caller="governor", dependency="action-handler", severity="critical"),
        alert("RegionHealthcheckFailing", fp="r", region="us-central1", severity="page"),
    ))[1]
    got = {x["fingerprint"]: (x["type"], x["entity"], x["severity"]) for x in body["alerts"]}
    assert got == {
        "q": ("queue_backlog_overflow", "acct-1001", "Sev2"),
        "c": ("circuit_breaker_opened", "governor->action-handler", "Sev1"),
        "r": ("region_failover", "us-central1", "Sev1"),
    }
    assert {i.entity_kind for i in eng.incidents.values()} == {"queue", "circuit", "region"}


def test_renames_and_refusals_are_explicit(setup, tmp_path):
    m = tmp_path / "am.toml"
    m.write_text('[rename.service]\n"checkout" = "api"\n[[rules]]\nname = "errors"\nmatch = { alertname = "Errors" }\nincident_type = "error_rate_spike"\nseverity = "Sev2"\n')
    src, eng, _ = setup(mapping=load_model(m, AlertmanagerMapping))
    notices: list = []
    eng.on_notice(notices.append)
    body = post(src, payload(
        alert("Errors", fp="ok", service="checkout"),
        alert("Errors", fp="ghost", service="no-such-svc"),
        alert("Errors", fp="nolabel"),
        alert("DiskFull", fp="nomatch", service="api"),
        {"status": "weird", "labels": {"alertname": "Errors", "service": "api"}, "fingerprint": "st"},
        "not an object",
    ))[1]
    results = [(x["fingerprint"], x["result"], x.get("reason", "")) for x in body["alerts"]]
    assert results[0][:2] == ("ok", "opened") and eng.get_incident(body["alerts"][0]["incident_id"]).entity == "api"
    assert results[1][1] == "rejected" and "'no-such-svc' is not in the fleet model" in results[1][2]
    assert results[2][1] == "rejected" and "no 'service' label" in results[2][2]
    assert results[3][1] == "rejected" and "no mapping rule matches alert 'DiskFull'" in results[3][2]
    assert results[4][1] == "rejected" and "neither firing nor resolved" in results[4][2]
    assert results[5] == ("alerts.5", "rejected", "the alert is not an object")
    assert src.counts["rejected"] == 5 and len(eng.incidents) == 1
    kinds = [n["kind"] for n in notices]
    assert kinds.count("alert.rejected") == 5 and "source.unknown_entity" in kinds
    assert src.status()["rejected"][-1]["reason"] == "the alert is not an object"


def test_malformed_requests(setup):
    src, eng, _ = setup(bearer_token="s3cret", max_body_bytes=2048)
    auth = {"Authorization": "Bearer s3cret"}
    ok = payload(alert("GgenHighErrorRate", service="app"))
    assert post(src, ok)[0] == 401
    assert post(src, ok, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert post(src, ok, path="/elsewhere", headers=auth)[0] == 404
    code, body = post(src, None, raw=b"{nope", headers=auth)
    assert code == 400 and body["error"].startswith("not JSON")
    code, body = post(src, payload(alert("X"), version="3"), headers=auth)
    assert code == 400 and "version '3' is not supported" in body["error"]
    code, body = post(src, {"version": "4", "alerts": "many"}, headers=auth)
    assert code == 400 and "'alerts'" in body["error"]
    code, body = post(src, None, raw=b"{" + b" " * 4000 + b"}", headers=auth)
    assert code == 413
    assert post(src, ok, headers=auth)[0] == 200 and len(eng.incidents) == 1
    host, port = src.address
    status = json.loads(OPENER.open(f"http://{host}:{port}/-/healthy", timeout=5).read())
    assert status["counts"]["bad_requests"] == 6 and status["counts"]["opened"] == 1


def test_sev4_alert_pages_at_once_and_alert_times_parse():
    assert parse_alert_time("2026-01-01T00:00:01.5Z") == 1767225601500
    assert parse_alert_time("2026-01-01T02:00:00+02:00") == 1767225600000
    assert parse_alert_time("2026-01-01T00:00:00.987654321Z") == 1767225600987
    assert parse_alert_time("0001-01-01T00:00:00Z") is None and parse_alert_time("yesterday") is None and parse_alert_time(None) is None
    _, mapping = load_alertmanager_mapping()
    eng = Engine(clock=VirtualClock(1767225660000), seed=1)
    src = AlertmanagerSource("127.0.0.1:0", mapping)
    src.bind(eng)
    res = src.receive(payload(alert("SlowLatency", service="api", severity="info")))
    inc = eng.get_incident(res["alerts"][0]["incident_id"])
    assert inc.severity == "Sev4" and inc.escalated and "not auto-mitigated" in inc.escalation_reason
    assert iso_utc(inc.first_anomaly_ms) == "2026-01-01T00:00:00.123Z"


def test_mttr_runs_from_the_alerts_starts_at_not_from_its_arrival(setup):
    """An alert that started firing 5 min before it reached the engine and resolved 10 min after
    it started: MTTR is 10 min (the incident's detection is the alert's startsAt), not the
    seconds between arrival and resolution."""
    src, eng, _ = setup()
    starts = parse_alert_time("2026-01-01T00:00:00Z")
    a = dict(alert("GgenHighErrorRate", fp="late", service="app", severity="warning"), startsAt="2026-01-01T00:00:00Z")
    inc = eng.get_incident(post(src, payload(a))[1]["alerts"][0]["incident_id"])
    assert inc.detected_at_ms == inc.events[0].observed_at_ms == starts  # what the incident shows
    eng.run_for(300_000)  # resolved at 00:10
    post(src, payload(dict(a, status="resolved", endsAt="2026-01-01T00:10:00Z")))
    last = inc.events[-1]
    assert last.kind == "recovery.verified" and not inc.open
    assert inc.mttr_ms == last.data["mttr_ms"] == 600_000
    assert "MTTR 600 s" in last.summary
