"""OTLP/JSON traces, logs and metrics: files written by the real OpenTelemetry SDK exporters and
a hand-written document exercising the encoding's corners."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")

from ingest_support import FIXTURES, ingest, iso, rows, write


@pytest.fixture
def sdk_files(tmp_path: Path) -> dict[str, Path]:
    from opentelemetry.exporter.otlp.json.file import FileMetricExporter, FileSpanExporter
    from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    out = {k: tmp_path / f"{k}.jsonl" for k in ("traces", "logs", "metrics")}
    res = Resource.create({"service.name": "governor", "host.name": "gov-1"})
    tp = TracerProvider(resource=res)
    tp.add_span_processor(SimpleSpanProcessor(FileSpanExporter(out["traces"])))
    tracer = tp.get_tracer("governor.scaler")
    with tracer.start_as_current_span("scale", attributes={"from": 20, "to": 50}):
        with tracer.start_as_current_span("db.pool.resize") as child:
            child.add_event("exception", {"exception.message": "pool exhausted"})
            child.set_status(Status(StatusCode.ERROR, "pool exhausted"))
    lp = LoggerProvider(resource=res)
    lp.add_log_record_processor(SimpleLogRecordProcessor(FileLogExporter(out["logs"])))
    log = logging.getLogger("ggen-test-otlp")
    log.handlers[:] = [LoggingHandler(logger_provider=lp)]
    log.propagate = False
    log.setLevel(logging.INFO)
    with tracer.start_as_current_span("handle") as sp:
        log.error("breaker OPEN for upstream", extra={"depth": 1245})
        ids = sp.get_span_context()
    log.warning("queue depth high")
    tp.shutdown()
    lp.shutdown()
    reader = PeriodicExportingMetricReader(FileMetricExporter(out["metrics"]), export_interval_millis=3_600_000)
    mp = MeterProvider(resource=res, metric_readers=[reader])
    meter = mp.get_meter("governor")
    meter.create_counter("requests").add(5, {"status": "503"})
    meter.create_histogram("latency_ms").record(120)
    meter.create_histogram("latency_ms").record(3000)
    mp.shutdown()
    out["trace_id"] = format(ids.trace_id, "032x")  # type: ignore[assignment]
    return out


def test_sdk_traces(tmp_path: Path, sdk_files: dict) -> None:
    s = ingest(tmp_path, sdk_files["traces"])
    f = s.files[0]
    assert (f.format, f.kind, f.spans, f.rejects) == ("otlp", "traces", 3, 0)
    spans = {r["name"]: r for r in rows(tmp_path, "SELECT * FROM spans")}
    root, child = spans["scale"], spans["db.pool.resize"]
    assert root["parent_span_id"] is None and child["parent_span_id"] == root["span_id"]
    assert child["trace_id"] == root["trace_id"] and len(root["trace_id"]) == 32 and len(root["span_id"]) == 16
    assert child["status"] == "ERROR" and child["status_message"] == "pool exhausted" and root["status"] == "UNSET"
    assert root["service"] == "governor" and root["kind"] == "INTERNAL"
    assert root["start_ts"] <= child["start_ts"] <= child["end_ts"] <= root["end_ts"]
    assert abs(root["duration_ms"] - (root["end_ts"] - root["start_ts"]).total_seconds() * 1000) < 0.01
    attrs = json.loads(root["attrs"])
    assert attrs["from"] == 20 and attrs["resource"]["host.name"] == "gov-1"
    assert json.loads(child["attrs"])["events"][0]["name"] == "exception"
    assert sorted(r["source_index"] for r in spans.values()) == [0, 1, 2]


def test_sdk_logs(tmp_path: Path, sdk_files: dict) -> None:
    s = ingest(tmp_path, sdk_files["logs"])
    assert s.files[0].events == 2 and s.rejects == 0
    got = rows(tmp_path, "SELECT * FROM events ORDER BY ts")
    assert [r["level"] for r in got] == ["ERROR", "WARN"]
    assert got[0]["message"] == "breaker OPEN for upstream" and got[0]["service"] == "governor" and got[0]["host"] == "gov-1"
    assert got[0]["trace_id"] == sdk_files["trace_id"] and got[1]["trace_id"] is None
    assert json.loads(got[0]["attrs"])["depth"] == 1245


def test_sdk_metrics(tmp_path: Path, sdk_files: dict) -> None:
    s = ingest(tmp_path, sdk_files["metrics"])
    got = {r["metric"]: r for r in rows(tmp_path, "SELECT * FROM metrics")}
    assert got["requests"]["value"] == 5.0 and json.loads(got["requests"]["labels"]) == {"status": "503"}
    hist = json.loads(got["latency_ms"]["labels"])["histogram"]
    assert hist["count"] == 2 and hist["sum"] == 3120.0 and got["latency_ms"]["value"] == 1560.0
    assert s.files[0].metrics == 2


def test_hand_written_document(tmp_path: Path) -> None:
    s = ingest(tmp_path, FIXTURES / "trace_by_hand.json")
    f = s.files[0]
    assert (f.format, f.lines_read, f.spans, f.rejects) == ("otlp", 3, 2, 1)
    spans = {r["name"]: r for r in rows(tmp_path, "SELECT * FROM spans")}
    server, client = spans["POST /v1/actions"], spans["upstream.call"]
    # Upper-case hex is normalized; base64 ids (protobuf's generic JSON mapping) are converted.
    assert server["trace_id"] == client["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert client["span_id"] == "0001020304050607" and client["parent_span_id"] == "eee19b7ec3c1b174"
    assert (server["kind"], client["kind"]) == ("SERVER", "CLIENT")
    assert (server["status"], client["status"]) == ("ERROR", "ERROR")
    assert server["duration_ms"] == 1250.0 and iso(server["start_ts"]) == "2026-01-25T14:19:30Z"
    assert server["service"] == "action-handler"
    assert json.loads(server["attrs"])["http.response.status_code"] == 503
    reject = rows(tmp_path, "SELECT * FROM rejects")[0]
    assert "span 2" in reject["reason"] and "not-an-id" in reject["reason"]


def test_bad_otlp_lines_are_rejects(tmp_path: Path) -> None:
    good = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [{"timeUnixNano": "1769350500000000000", "severityNumber": 17, "body": {"stringValue": "x"}}]}]}]}
    text = json.dumps(good) + "\n{oops\n" + json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "no time"}}]}]}]}) + "\n"
    s = ingest(tmp_path, write(tmp_path / "l.jsonl", text))
    f = s.files[0]
    assert (f.format, f.events, f.rejects, f.lines_read) == ("otlp", 1, 2, 3)
    assert rows(tmp_path, "SELECT level FROM events")[0]["level"] == "ERROR"
    reasons = sorted(r["reason"] for r in rows(tmp_path, "SELECT reason FROM rejects"))
    assert reasons[0].startswith("invalid JSON") and "missing timeUnixNano" in reasons[1]
