"""Hive-partitioned Parquet export and querying it with the same SQL."""
from __future__ import annotations

import json
from pathlib import Path

from analyzer.ingest import open_db, open_parquet_dataset
from ingest_support import FIXTURES, ingest, write

QUERIES = [
    "SELECT ts, level, raw_level, service, host, message, trace_id, span_id, request_id, attrs, source_file, source_line FROM events ORDER BY source_file, source_line",
    "SELECT service, level, count(*) FROM events GROUP BY ALL ORDER BY ALL",
    "SELECT * FROM spans ORDER BY source_index",
    "SELECT * FROM metrics ORDER BY ts, metric",
    "SELECT count(*) FROM rejects",
    "SELECT count(*) FROM events WHERE ts BETWEEN TIMESTAMPTZ '2026-01-25 14:15:00+00' AND TIMESTAMPTZ '2026-01-25 14:45:00+00'",
]


def test_parquet_round_trip_answers_the_same_sql(tmp_path: Path) -> None:
    lines = [json.dumps({"ts": f"2026-01-{25 + (i % 2)}T14:{i % 60:02d}:00Z", "service": ["governor", "app", None][i % 3], "level": "warn", "msg": f"m{i}"}) for i in range(60)]
    p = write(tmp_path / "a.jsonl", "\n".join(lines) + "\nnot json\n")
    metrics = write(tmp_path / "queue_depth.csv", "end_time,value\n2026-01-25T14:15:00Z,400\n2026-01-25T14:16:00Z,1245\n")
    out = tmp_path / "lake"
    s = ingest(tmp_path, p, metrics, FIXTURES / "trace_by_hand.json", parquet_out=out)
    assert s.parquet_dir == str(out)
    dirs = sorted(str(d.relative_to(out / "events")) for d in (out / "events").glob("date=*/service=*"))
    assert dirs == [
        "date=2026-01-25/service=__HIVE_DEFAULT_PARTITION__",
        "date=2026-01-25/service=app",
        "date=2026-01-25/service=governor",
        "date=2026-01-26/service=__HIVE_DEFAULT_PARTITION__",
        "date=2026-01-26/service=app",
        "date=2026-01-26/service=governor",
    ]
    assert any((out / "spans").glob("date=2026-01-25/service=action-handler/*.parquet"))
    db = open_db(tmp_path / "a.duckdb")
    lake = open_parquet_dataset(out)
    try:
        for sql in QUERIES:
            assert db.execute(sql).fetchall() == lake.execute(sql).fetchall(), sql
        assert [d[0] for d in db.execute("SELECT * FROM events").description] == [d[0] for d in lake.execute("SELECT * FROM events").description]
    finally:
        db.close()
        lake.close()


def test_a_second_export_replaces_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    ingest(tmp_path, write(tmp_path / "a.jsonl", '{"ts": 1769350500, "msg": "one"}\n'), parquet_out=out)
    ingest(tmp_path, write(tmp_path / "b.jsonl", '{"ts": 1769350600, "msg": "two"}\n'), parquet_out=out)
    lake = open_parquet_dataset(out)
    try:
        assert sorted(r[0] for r in lake.execute("SELECT message FROM events").fetchall()) == ["one", "two"]
        assert lake.execute("SELECT count(*) FROM spans").fetchone()[0] == 0
    finally:
        lake.close()
