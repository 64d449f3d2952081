"""JSON Lines, logfmt, JSON arrays and CSV: field-name variants, timestamps, levels, attrs, rejects."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest_support import FIXTURES, ingest, iso, rows, write


def _one(tmp_path: Path, line: str, **kw) -> dict:
    ingest(tmp_path, write(tmp_path / "one.jsonl", line + "\n"), **kw)
    got = rows(tmp_path, "SELECT * FROM events")
    assert len(got) == 1, rows(tmp_path, "SELECT * FROM rejects")
    return got[0]


@pytest.mark.parametrize(
    ("record", "ts"),
    [
        ({"ts": 1769350500}, "2026-01-25T14:15:00Z"),
        ({"time": 1769350500.25}, "2026-01-25T14:15:00.25Z"),
        ({"timestamp": 1769350500123}, "2026-01-25T14:15:00.123Z"),
        ({"@timestamp": 1769350500123456}, "2026-01-25T14:15:00.123456Z"),
        ({"ts": 1769350500123456789}, "2026-01-25T14:15:00.123456Z"),
        ({"ts": "1769350500"}, "2026-01-25T14:15:00Z"),
        ({"time": "2026-01-25T14:15:00Z"}, "2026-01-25T14:15:00Z"),
        ({"time": "2026-01-25T16:15:00.5+02:00"}, "2026-01-25T14:15:00.5Z"),
        ({"time": "2026-01-25T09:15:00.123456789-0500"}, "2026-01-25T14:15:00.123456Z"),
        ({"timestamp": "2026-01-25 14:15:00,250"}, "2026-01-25T14:15:00.25Z"),
        ({"@timestamp": "2026-01-25T14:15:00.1Z"}, "2026-01-25T14:15:00.1Z"),
    ],
)
def test_timestamp_forms(tmp_path: Path, record: dict, ts: str) -> None:
    row = _one(tmp_path, json.dumps({**record, "msg": "x"}))
    assert iso(row["ts"]) == ts


@pytest.mark.parametrize(
    ("record", "column", "value"),
    [
        ({"level": "warning"}, "level", "WARN"),
        ({"severity": "CRITICAL"}, "level", "FATAL"),
        ({"lvl": "dbg"}, "level", "DEBUG"),
        ({"level": 50}, "level", "ERROR"),
        ({"level": 30}, "level", "INFO"),
        ({"level": "sparkly"}, "level", "INFO"),
        ({"levelname": "ERROR"}, "raw_level", "ERROR"),
        ({"message": "m1"}, "message", "m1"),
        ({"msg": "m2"}, "message", "m2"),
        ({"jsonPayload": {"message": "m3"}}, "message", "m3"),
        ({"service": "governor"}, "service", "governor"),
        ({"service.name": "flat-dotted"}, "service", "flat-dotted"),
        ({"service": {"name": "nested"}}, "service", "nested"),
        ({"labels": {"service": "gcp-label"}}, "service", "gcp-label"),
        ({"hostname": "gov-1"}, "host", "gov-1"),
        ({"trace_id": "t1"}, "trace_id", "t1"),
        ({"traceId": "t2"}, "trace_id", "t2"),
        ({"span_id": "s1"}, "span_id", "s1"),
        ({"spanId": "s2"}, "span_id", "s2"),
        ({"request_id": "r1"}, "request_id", "r1"),
        ({"requestId": "r2"}, "request_id", "r2"),
    ],
)
def test_field_name_variants(tmp_path: Path, record: dict, column: str, value: str) -> None:
    row = _one(tmp_path, json.dumps({"ts": "2026-01-25T14:15:00Z", **record}))
    assert row[column] == value


def test_unknown_fields_stay_in_attrs_and_used_ones_leave(tmp_path: Path) -> None:
    row = _one(tmp_path, json.dumps({"ts": 1769350500, "level": "info", "msg": "hi", "depth": 1245, "account": {"id": 7}, "message": "second message key"}))
    attrs = json.loads(row["attrs"])
    assert attrs["depth"] == 1245 and attrs["account"] == {"id": 7}
    # Only the key that supplied the message is removed; the other stays, nothing is lost.
    assert attrs["msg"] == "hi" and row["message"] == "second message key"
    assert "ts" not in attrs and "level" not in attrs


def test_missing_level_gets_the_default_and_service_option_fills(tmp_path: Path) -> None:
    row = _one(tmp_path, json.dumps({"ts": 1769350500, "msg": "x"}), service="batch")
    assert row["level"] == "INFO" and row["raw_level"] is None and row["service"] == "batch"
    own = _one(tmp_path / "b", json.dumps({"ts": 1769350500, "msg": "x", "service": "own"}), service="batch")
    assert own["service"] == "own"


def test_naive_timestamps_follow_tz(tmp_path: Path) -> None:
    row = _one(tmp_path, json.dumps({"time": "2026-01-25 09:15:00", "msg": "x"}), tz="America/New_York")
    assert iso(row["ts"]) == "2026-01-25T14:15:00Z"
    epoch = _one(tmp_path / "b", json.dumps({"time": 1769350500, "msg": "x"}), tz="America/New_York")
    assert iso(epoch["ts"]) == "2026-01-25T14:15:00Z"


def test_bad_lines_become_rejects_with_reasons(tmp_path: Path) -> None:
    lines = [
        '{"ts": 1769350500, "msg": "good"}',
        "{broken json",
        "",
        "[1, 2]",
        '{"msg": "no time at all"}',
        '{"ts": "2026-02-30T00:00:00Z", "msg": "no such day"}',
        '{"ts": 99999999999999999999999, "msg": "far future"}',
        '{"ts": "1969-07-20T20:17:00Z", "msg": "before 1970"}',
        '{"ts": "yesterday-ish", "msg": "words"}',
    ]
    s = ingest(tmp_path, write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n"))
    assert (s.lines_read, s.rows_ingested, s.rejects) == (9, 1, 8)
    got = {r["line"]: r["reason"] for r in rows(tmp_path, "SELECT line, reason FROM rejects")}
    assert got[2] == "invalid JSON"
    assert got[3] == "empty line"
    assert got[4] == "JSON value is not an object"
    assert got[5] == "no timestamp"
    assert got[6].startswith("unparseable timestamp: 2026-02-30")
    assert got[7].startswith("unparseable timestamp") or got[7].startswith("timestamp out of range")
    assert got[8].startswith("timestamp out of range")
    assert got[9].startswith("unparseable timestamp: yesterday")
    raw = rows(tmp_path, "SELECT raw, raw_bytes FROM rejects WHERE line = 2")[0]
    assert raw["raw"] == b"{broken json" and raw["raw_bytes"] == 12


def test_timestamp_under_an_unsampled_alias_is_rescued(tmp_path: Path) -> None:
    """Aliases are narrowed to the keys sampled from each chunk; a line using another one still parses."""
    lines = [json.dumps({"ts": 1769350500 + i, "msg": f"m{i}"}) for i in range(300)]
    lines.append(json.dumps({"eventTime": "2026-01-25T15:00:00Z", "msg": "late alias"}))
    ingest(tmp_path, write(tmp_path / "x.jsonl", "\n".join(lines) + "\n"))
    [row] = rows(tmp_path, "SELECT * FROM events WHERE source_line = 301")
    assert iso(row["ts"]) == "2026-01-25T15:00:00Z" and row["message"] == "late alias"


def test_gcp_export_array(tmp_path: Path) -> None:
    s = ingest(tmp_path, FIXTURES / "gcp_export.json")
    f = s.files[0]
    assert (f.format, f.unit, f.lines_read, f.events, f.rejects) == ("json-array", "records", 3, 2, 1)
    got = rows(tmp_path, "SELECT * FROM events ORDER BY source_line")
    assert got[0]["service"] == "governor" and got[0]["level"] == "WARN"
    assert got[0]["message"] == "queue depth 1245 exceeds threshold 1000"
    assert got[0]["trace_id"] == "projects/demo/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    assert iso(got[0]["ts"]) == "2026-01-25T14:17:15.003452Z"
    assert got[1]["level"] == "ERROR" and got[1]["service"] == "action-handler"
    assert json.loads(got[0]["attrs"])["jsonPayload"]["depth"] == 1245
    assert rows(tmp_path, "SELECT line, reason FROM rejects") == [{"line": 3, "reason": "JSON value is not an object"}]


def test_logfmt(tmp_path: Path) -> None:
    text = (
        'ts=2026-01-25T14:15:00Z level=warn msg="queue depth 1245" service=governor depth=1245 region=us-east1\n'
        'time=1769350560 lvl=error msg="breaker \\"OPEN\\"" service=action-handler trace_id=abc\n'
        "just some words without pairs\n"
    )
    s = ingest(tmp_path, write(tmp_path / "app.logfmt", text))
    assert s.files[0].format == "logfmt" and s.rows_ingested == 2 and s.rejects == 1
    got = rows(tmp_path, "SELECT * FROM events ORDER BY source_line")
    assert got[0]["message"] == "queue depth 1245" and got[0]["level"] == "WARN" and got[0]["service"] == "governor"
    assert json.loads(got[0]["attrs"]) == {"depth": "1245", "region": "us-east1"}
    assert got[1]["message"] == 'breaker "OPEN"' and got[1]["trace_id"] == "abc" and iso(got[1]["ts"]) == "2026-01-25T14:16:00Z"


def test_csv_events_and_metric_series(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", 'timestamp,level,service,message\n2026-01-25T14:15:00Z,error,governor,"depth 1,245 over threshold"\n2026-01-25T14:16:00Z,info,governor,"multi\nline"\nbad,row\n')
    metrics = write(tmp_path / "queue_depth.csv", "end_time,value,region\n2026-01-25T14:15:00Z,400,us-east1\n2026-01-25T14:16:00Z,1245.5,us-east1\n2026-01-25T14:17:00Z,n/a,us-east1\n")
    s = ingest(tmp_path, events, metrics)
    ev, me = s.files
    assert (ev.format, ev.kind, ev.events, ev.rejects) == ("csv", "events", 2, 1)
    assert (me.format, me.kind, me.metrics, me.rejects) == ("csv", "metrics", 2, 1)
    got = rows(tmp_path, "SELECT * FROM events ORDER BY source_line")
    assert got[0]["message"] == "depth 1,245 over threshold" and got[0]["level"] == "ERROR"
    assert got[1]["message"] == "multi\nline"
    assert [r["line"] for r in rows(tmp_path, "SELECT line FROM rejects WHERE source_file LIKE '%events.csv'")] == [5]
    m = rows(tmp_path, "SELECT * FROM metrics ORDER BY ts")
    assert [(r["metric"], r["value"]) for r in m] == [("queue_depth", 400.0), ("queue_depth", 1245.5)]
    assert json.loads(m[0]["labels"]) == {"region": "us-east1"}


def test_jsonl_metric_samples(tmp_path: Path) -> None:
    text = "\n".join(
        json.dumps(r)
        for r in [
            {"ts": "2026-01-25T14:15:00Z", "metric": "queue_depth", "value": 1245, "service": "governor", "labels": {"region": "us-east1"}},
            {"ts": "2026-01-25T14:16:00Z", "metric": "error_rate_pct", "value": 0.3, "service": "app"},
            {"ts": "2026-01-25T14:17:00Z", "metric": "queue_depth", "value": "lots", "service": "governor"},
        ]
    )
    s = ingest(tmp_path, write(tmp_path / "m.jsonl", text + "\n"))
    assert s.files[0].kind == "metrics" and s.files[0].metrics == 2 and s.rejects == 1
    got = rows(tmp_path, "SELECT * FROM metrics ORDER BY ts")
    assert got[0]["service"] == "governor" and json.loads(got[0]["labels"]) == {"region": "us-east1"}
    assert rows(tmp_path, "SELECT reason FROM rejects")[0]["reason"].startswith("value is not a number")
