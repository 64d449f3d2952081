"""Structured records (JSON Lines, logfmt) against an independent model: which key fills each
column, and that ``attrs`` keeps every other key, whichever SQL path (the rebuilt-from-sampled-keys
fast path or the merge-patch path) a line takes. Also the lines that once aborted a whole file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.ingest import load_catalog
from analyzer.ingest import sql as q
from ingest_support import ingest, rows, write

CATALOG = load_catalog()
FIELDS = CATALOG.fields.event_fields()
COLUMNS = {"level": "raw_level", "message": "message", "service": "service", "host": "host",
           "trace_id": "trace_id", "span_id": "span_id", "request_id": "request_id"}


def _scalar(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return value


def _pick(record: dict, aliases: list[str]) -> tuple[Any, str | None]:
    """(value, literal key that supplied it or None): literal key first, then the nested path."""
    for alias in aliases:
        if _scalar(record.get(alias)) is not None:
            return record[alias], alias
        if "." in alias:
            head, *parts = alias.split(".")
            cur: Any = record.get(head)
            if not isinstance(cur, dict):
                continue
            for p in parts:
                cur = cur.get(p) if isinstance(cur, dict) else None
            if _scalar(cur) is not None:
                return cur, None
    return None, None


def _numbers_as_floats(x: Any) -> Any:
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        return {k: _numbers_as_floats(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_numbers_as_floats(v) for v in x]
    return x


def _check_against_model(tmp_path: Path, records: list[dict]) -> None:
    """Every ingested row has the columns and attrs the model predicts for its source line."""
    got = rows(tmp_path, "SELECT * FROM events ORDER BY source_line")
    assert len(got) == len(records)
    for row in got:
        record = records[row["source_line"] - 1]
        used = set()
        for field, column in COLUMNS.items():
            value, key = _pick(record, FIELDS[field])
            if key:
                used.add(key)
            if isinstance(value, str):
                assert row[column] == value, (field, record, row)
            else:
                assert (row[column] is None) == (value is None), (field, record, row)
        used.add(_pick(record, FIELDS["ts"])[1])
        expected = {k: v for k, v in record.items() if k not in used}
        attrs = json.loads(row["attrs"]) if row["attrs"] is not None else {}
        assert _numbers_as_floats(attrs) == _numbers_as_floats(expected), (record, row["attrs"])


TEXT = st.one_of(st.sampled_from(["x", "[main] started", "{not json}", "[", "{", "", "a\"b", "\u00e9\u4e2d", "tab\there"]), st.text(max_size=12))
VALUE = st.one_of(st.none(), TEXT, st.integers(-10**12, 10**12), st.booleans(), st.just(1.5),
                  st.dictionaries(st.sampled_from(["name", "message", "service", "k"]), TEXT, max_size=2),
                  st.lists(st.integers(0, 3), max_size=2))
KEYS = ["level", "severity", "msg", "message", "service", "service.name", "labels", "jsonPayload", "host", "hostname",
        "trace_id", "traceId", "span_id", "request_id", "requestId", "depth", "account", "region"]
RECORD = st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=6)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, min_size=1, max_size=30), shape=st.sampled_from(["same", "mixed"]))
def test_columns_and_attrs_follow_the_model(tmp_path_factory, records: list[dict], shape: str) -> None:
    tmp = tmp_path_factory.mktemp("model")
    if shape == "same":
        # Lines sharing one key set: most of them take the rebuilt-attrs fast path.
        keys = sorted(records[0])
        records = [{k: r.get(k, records[0][k]) for k in keys} for r in records]
    records = [{"ts": 1769350500 + i, **r} for i, r in enumerate(records)]
    ingest(tmp, write(tmp / "m.jsonl", "".join(json.dumps(r) + "\n" for r in records)))
    _check_against_model(tmp, records)


def test_fast_and_merge_paths_give_identical_rows(tmp_path: Path) -> None:
    """The same file read with the sampled keys (fast attrs path) and without (merge path)."""
    import duckdb

    from analyzer.ingest.schema import create_schema

    lines = [json.dumps({"timestamp": f"2026-01-25T06:00:{i % 60:02d}Z", "level": ["info", "warn"][i % 2], "service": "api",
                         "trace_id": f"{i:032x}", "status": [200, 503, None][i % 3], "message": f"m {i}", **({"extra": {"a": [i]}} if i % 7 == 0 else {})})
             for i in range(200)]
    path = write(tmp_path / "f.jsonl", "\n".join(lines) + "\n")
    out = []
    for present in ({"timestamp", "level", "service", "trace_id", "status", "message"}, None):
        con = duckdb.connect()
        create_schema(con)
        src = f"(SELECT row_number() OVER () AS n, line FROM {q.read_lines(str(path))})"
        con.execute(q.jsonl_events_sql(src, "f", CATALOG.fields, CATALOG.levels, None, present))
        out.append(con.execute("SELECT * FROM events ORDER BY source_line").fetchall())
        con.close()
    assert out[0] == out[1] and len(out[0]) == 200


def test_text_that_looks_like_json_is_a_value_and_never_aborts_the_file(tmp_path: Path) -> None:
    records = [
        {"ts": 1769350500, "msg": "[main] starting up"},
        {"ts": 1769350501, "msg": "{not json} but a message", "service": "{oops"},
        {"ts": 1769350502, "message": {"text": "an object"}, "msg": "fallback"},
        {"ts": 1769350503, "labels": "{half", "jsonPayload": "[x", "msg": "m"},
    ]
    s = ingest(tmp_path, write(tmp_path / "j.jsonl", "".join(json.dumps(r) + "\n" for r in records)))
    assert s.rows_ingested == 4 and s.rejects == 0
    got = rows(tmp_path, "SELECT message, service, attrs FROM events ORDER BY source_line")
    assert got[0]["message"] == "[main] starting up" and got[0]["attrs"] is None
    assert got[1]["message"] == "{not json} but a message" and got[1]["service"] == "{oops"
    assert got[2]["message"] == "fallback" and json.loads(got[2]["attrs"]) == {"message": {"text": "an object"}}
    assert json.loads(got[3]["attrs"]) == {"labels": "{half", "jsonPayload": "[x"}


def test_only_the_keys_that_filled_columns_leave_attrs(tmp_path: Path) -> None:
    records = [
        # The service came from the nested service.name: the literal labels.service key stays.
        {"ts": 1769350500, "service": {"name": "nested"}, "labels.service": "flat", "msg": "a"},
        # An empty first alias supplied nothing: it stays, the alias that did leaves.
        {"ts": 1769350501, "message": "", "msg": "from msg"},
        # A key with a null value supplied nothing: it stays.
        {"ts": 1769350502, "msg": "b", "level": None, "host": None},
    ]
    ingest(tmp_path, write(tmp_path / "k.jsonl", "".join(json.dumps(r) + "\n" for r in records)))
    _check_against_model(tmp_path, records)
    got = rows(tmp_path, "SELECT service, message, attrs FROM events ORDER BY source_line")
    assert got[0]["service"] == "nested" and json.loads(got[0]["attrs"]) == {"service": {"name": "nested"}, "labels.service": "flat"}
    assert got[1]["message"] == "from msg" and json.loads(got[1]["attrs"]) == {"message": ""}
    assert json.loads(got[2]["attrs"]) == {"level": None, "host": None}


def test_logfmt_repeated_keys_and_bracketed_values(tmp_path: Path) -> None:
    text = (
        "ts=2026-01-25T14:15:00Z level=info msg=first msg=second\n"
        'ts=2026-01-25T14:15:01Z level=warn msg="[worker-3] retrying" message=chosen region={eu}\n'
    )
    s = ingest(tmp_path, write(tmp_path / "d.logfmt", text), fmt="logfmt")
    assert s.rows_ingested == 2 and s.rejects == 0
    got = rows(tmp_path, "SELECT message, attrs FROM events ORDER BY source_line")
    # The first msg fills the column; the repeated one is kept.
    assert got[0]["message"] == "first" and json.loads(got[0]["attrs"]) == {"msg": "second"}
    # message comes before msg among the aliases; msg (bracketed) and region stay as text.
    assert got[1]["message"] == "chosen" and json.loads(got[1]["attrs"]) == {"msg": "[worker-3] retrying", "region": "{eu}"}
