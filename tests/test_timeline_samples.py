"""The five sample incidents, end to end: drill with receipts, export logs/traces/metrics, ingest,
reconstruct; the phases come in order, the root-cause service is ranked first, and the MTTR from
the data agrees with the ledger's within one metric sampling interval."""
from __future__ import annotations

import gzip
import json

import pytest

from analyzer.timeline import PHASE_ORDER, Timeline, reconstruct_timeline
from engine.clock import parse_iso_ms
from tests.timeline_support import SAMPLES, Case, drilled


@pytest.fixture(scope="module")
def timelines() -> dict[str, tuple[Case, Timeline]]:
    out = {}
    for name in SAMPLES:
        case = drilled(name)
        led = case.ledger()
        try:
            out[name] = (case, reconstruct_timeline(case.db, incident_id=case.incident_id, ledger=led, anchors=case.anchors()))
        finally:
            led.close()
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_phases_come_in_order(timelines, name):
    case, tl = timelines[name]
    names = [p.name for p in tl.phases]
    for required in ("BASELINE", "FIRST ANOMALY", "ALERT TRIGGERED", "MITIGATION", "RECOVERED", "ALL CLEAR"):
        assert required in names, (name, names)
    ranks = [PHASE_ORDER.index(n) for n in names]
    assert ranks == sorted(ranks), names
    times = [p.at_ms for p in tl.phases]
    assert times == sorted(times)
    # the first anomaly comes from the data, never after the alert, and is where a series left its baseline
    fa, alert = tl.phase("FIRST ANOMALY"), tl.phase("ALERT TRIGGERED")
    assert fa is not None and alert is not None and fa.from_data
    assert fa.at_ms <= alert.at_ms
    assert tl.first_anomaly is not None and tl.first_anomaly.value >= tl.first_anomaly.threshold > tl.first_anomaly.baseline
    # ... and not before the fault was injected
    injected = parse_iso_ms(case.manifest["faults"][0]["injected_at"])
    assert fa.at_ms >= injected - 1000
    # every phase carries a snapshot of the incident's metrics
    assert all(p.snapshot for p in tl.phases)


@pytest.mark.parametrize("name", SAMPLES)
def test_root_cause_service_is_ranked_first(timelines, name):
    case, tl = timelines[name]
    want = case.manifest["faults"][0]["root_cause_service"]
    assert tl.causes, name
    assert tl.causes[0].service == want, [(c.service, round(c.score, 2)) for c in tl.causes]
    assert tl.causes[0].reasons and tl.causes[0].evidence
    if len(tl.causes) > 1:
        assert tl.causes[0].score > tl.causes[1].score


@pytest.mark.parametrize("name", SAMPLES)
def test_mttr_from_data_agrees_with_the_ledger(timelines, name):
    case, tl = timelines[name]
    mttr = tl.duration("MTTR")
    assert mttr is not None and mttr.data_ms is not None and mttr.receipt_ms is not None
    assert mttr.receipt_ms == case.manifest["incidents"][0]["mttr_ms"]
    assert tl.metric_interval_ms == 10_000  # sample-logs writes metrics every 10 s
    assert abs(mttr.data_ms - mttr.receipt_ms) <= tl.metric_interval_ms, mttr
    durable = {c.name: c for c in tl.checks}
    assert durable["durations plausible"].status == "ok"
    assert durable["threshold crossing matches the detection receipt"].status == "ok", durable["threshold crossing matches the detection receipt"].detail
    assert durable["timestamps ordered"].status == "ok"


@pytest.mark.parametrize("name", SAMPLES)
def test_evidence_lines_lead_back_to_their_origin(timelines, name):
    """Every log or metric citation names a real line whose text is what the timeline says;
    every span citation a real span; every receipt citation a receipt of the incident."""
    case, tl = timelines[name]
    receipt_ids = {r.receipt_id for r in tl.receipts}
    assert tl.receipts and all(r.verification == "verified" for r in tl.receipts)
    lines_cache: dict[str, list[str]] = {}

    def line(path: str, n: int) -> str:
        if path not in lines_cache:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                lines_cache[path] = fh.read().split("\n")
        return lines_cache[path][n - 1]

    assert tl.evidence
    for e in tl.evidence:
        o = e.origin
        if o.source == "receipt":
            assert o.receipt_id in receipt_ids
        elif o.source == "trace":
            assert o.trace_id and o.span_id and o.line is not None  # spans are cited by id and index
            with open(o.file, encoding="utf-8") as fh:
                assert f'"spanId":"{o.span_id}"' in fh.read()
        else:
            text = line(o.file, o.line)
            if e.kind in ("onset", "peak"):
                continue
            first_words = e.text.split(" (no receipt)")[0][:25]
            assert first_words in text, (e.text, o.ref(), text)
    # sources are tagged
    assert {"log", "metric", "receipt"} <= {e.source for e in tl.evidence}


def test_unexplained_deploy_is_listed_and_precedes_the_first_errors(timelines):
    _, tl = timelines["errors-bad-deploy"]
    deploys = [e for e in tl.unexplained if e.kind == "deploy"]
    assert len(deploys) == 1 and "revision 1 -> 2" in deploys[0].text
    # the rollback has its receipt, so it is not unexplained
    assert not any("2 -> 1" in e.text for e in tl.unexplained)
    chain = dict(tl.propagation)
    assert "api <- app" in chain


def test_slow_queries_chain_goes_down_to_the_database(timelines):
    _, tl = timelines["latency-slow-queries"]
    assert tl.propagation[0][0] == "api <- app <- database"
    assert tl.causes[0].slow_traces > 0


def test_breaker_failures_point_at_the_dependency_through_client_spans(timelines):
    _, tl = timelines["breaker-dependency-outage"]
    top = tl.causes[0]
    assert top.service == "action-handler" and top.failing_traces > 0
    assert any(o.source == "trace" for o in top.evidence)


def test_queue_first_anomaly_is_before_the_receipts_first_anomaly(timelines):
    """The data sees the backlog grow before the detector's own threshold crossing."""
    _, tl = timelines["queue-traffic-surge"]
    assert tl.incident is not None and tl.incident.first_anomaly_ms is not None
    assert tl.first_anomaly is not None and tl.first_anomaly.at_ms < tl.incident.first_anomaly_ms
    ttd = tl.duration("time to detect")
    assert ttd is not None and ttd.data_ms > ttd.receipt_ms
    impact = {i.name: i for i in tl.impact}
    assert impact["accounts affected"].count == 1 and "acct-1001" in impact["accounts affected"].text


def test_renderings_carry_the_same_facts(timelines):
    _, tl = timelines["region-outage"]
    md, table, data = tl.render_markdown(), tl.render_table(), tl.to_dict()
    for text in (md, table):
        assert "ALERT TRIGGERED" in text and "ALL CLEAR" in text and "region_failover" in text
    json.dumps(data)  # JSON-ready
    assert data["causes"][0]["service"] == "api"
    assert [p["name"] for p in data["phases"]] == [p.name for p in tl.phases]
    assert "```text" in md and any("#" in line for line in tl.chart)
    assert tl.counts["log_records"] > 1000 and tl.counts["traces"] > 100
