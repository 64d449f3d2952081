"""The window queries read only the row groups of the window (DuckDB's min/max statistics of the
time column skip the rest), and a log file out of time order is reported."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

from analyzer.ingest import ingest_paths
from analyzer.ingest.schema import configure, create_schema
from analyzer.timeline import reconstruct_timeline
from analyzer.timeline.data import change_pattern, metric_names, window_queries
from analyzer.timeline.settings import load_timeline_settings
from engine.clock import iso_utc, parse_iso_ms

BASE = parse_iso_ms("2026-01-20T00:00:00Z")


def test_window_queries_skip_the_row_groups_outside_the_window(tmp_path):
    db = tmp_path / "a.duckdb"
    con = duckdb.connect(str(db))
    configure(con)
    create_schema(con)
    n = 800_000  # about 7 row groups, one day in time order
    con.execute(
        f"""INSERT INTO events SELECT make_timestamptz(({BASE} + i * 108) * 1000),
               CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'INFO' END, 'info', 'api', NULL,
               'GET /x ' || i, NULL, NULL, NULL, '{{}}'::JSON, '/logs/api.jsonl', i + 1
            FROM range({n}) r(i)"""
    )
    con.execute(
        f"""INSERT INTO metrics SELECT make_timestamptz(({BASE} + i * 250) * 1000), 'api', 'request_latency_p99_ms', 100.0,
               '{{}}'::JSON, '/m.jsonl', i + 1 FROM range(345600) r(i)"""
    )
    con.execute("CHECKPOINT")
    st = load_timeline_settings()
    start = BASE + 12 * 3_600_000
    queries = window_queries(start, start + 30 * 60_000, st, metric_names(st), change_pattern(st))
    out = tmp_path / "profile.json"
    con.execute("SET enable_profiling = 'json'")
    con.execute(f"SET profiling_output = '{out}'")
    for name in ("buckets", "changes", "metrics"):
        sql, params = queries[name]
        con.execute(sql, params).fetchall()
        prof = json.loads(out.read_text())
        scans = []

        def walk(node):
            if node.get("type") == "TABLE_SCAN":
                scans.append(node)
            for c in node.get("children", []):
                walk(c)

        for op in prof["operator"]:
            walk(op)
        assert scans, name
        for sc in scans:
            assert sc["row_groups_scanned"] < sc["total_row_groups_to_scan"], (name, sc)
            assert sc["rows_scanned"] <= 2 * 122_880, (name, sc["rows_scanned"])
    con.close()


def test_file_out_of_time_order_is_reported(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = []
    for i in range(600):
        t = BASE + i * 1000
        lines.append({"timestamp": t, "level": "ERROR" if i % 40 == 0 else "INFO", "service": "api", "message": f"GET /x {i}"})
    # a block of lines written 5 minutes late, in the middle of the file
    late = [dict(x, timestamp=x["timestamp"] - 300_000) for x in lines[400:420]]
    body = lines[:300] + late + lines[300:]
    (logs / "api.jsonl").write_text("\n".join(json.dumps(dict(x, timestamp=iso_utc(x["timestamp"]))) for x in body) + "\n")
    ingest_paths([logs], tmp_path / "a.duckdb")
    tl = reconstruct_timeline(tmp_path / "a.duckdb", start_ms=BASE, end_ms=BASE + 700_000)
    check = next(c for c in tl.checks if c.name == "timestamps ordered")
    assert check.status == "warn" and "api.jsonl" in check.detail and "out of time order" in check.detail
    assert Path(tl.sources_root or "") == logs
