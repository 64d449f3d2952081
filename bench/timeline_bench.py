"""Timeline reconstruction on a big analyzer database, beside a full scan of the same table.

Builds (with DuckDB SQL, in time order, as ingest writes it) an analyzer database of N events
(default 10 million, spread over 7 days), with metric series every 10 s and traces, then:

- reconstructs the timeline of a 30-minute window (``reconstruct_timeline``: every query of the
  window, the analysis and the rendering), median of several runs;
- runs the timeline's heaviest query (log buckets per service) over the whole table: the full
  scan the window query avoids, and a plain full scan of the message column;
- prints the profile of the window query: DuckDB's row groups scanned out of the table's, i.e.
  what the min/max statistics (zone maps) of the time column let it skip.

    .venv/bin/python bench/timeline_bench.py [--events 10000000] [--days 7] [--db FILE] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from analyzer.ingest.schema import configure, create_schema  # noqa: E402
from analyzer.timeline import reconstruct_timeline  # noqa: E402
from analyzer.timeline.data import change_pattern, load_window, metric_names, open_analyzer_db, window_queries  # noqa: E402
from analyzer.timeline.settings import load_timeline_settings  # noqa: E402
from engine.clock import iso_utc, parse_iso_ms  # noqa: E402

BASE = "2026-01-20T00:00:00Z"
SERVICES = ["api", "app", "upstream", "governor", "action-handler", "database"]


def build(db: Path, events: int, days: int) -> dict[str, float]:
    """Fill the analyzer schema with ``events`` log rows over ``days`` days, in time order."""
    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    configure(con)
    create_schema(con)
    span_ms = days * 86_400_000
    step = span_ms / events
    base = parse_iso_ms(BASE)
    svc = "['" + "','".join(SERVICES) + "']"
    # One INSERT in time order: DuckDB writes row groups of ~122,880 rows whose min/max of ts
    # cover a narrow slice of time, as ingest leaves a time-ordered log file.
    con.execute(
        f"""INSERT INTO events
        SELECT make_timestamptz(CAST(({base} + i * {step}) * 1000 AS BIGINT)) AS ts,
               CASE WHEN i % 53 = 0 THEN 'ERROR' WHEN i % 17 = 0 THEN 'WARN' ELSE 'INFO' END AS level,
               CASE WHEN i % 53 = 0 THEN 'error' WHEN i % 17 = 0 THEN 'warn' ELSE 'info' END AS raw_level,
               {svc}[1 + i % 6] AS service,
               'host-' || (i % 12) AS host,
               CASE WHEN i % 53 = 0 THEN 'POST /v1/actions/' || (i * 7919 % 1000003) || ' 503 upstream app returned 5xx req=' || to_hex(i * 2654435761 % 4294967291)
                    WHEN i % 17 = 0 THEN 'GET /v1/status 429 throttled client=10.' || (i % 251) || '.' || (i * 13 % 251) || ' req=' || to_hex(i * 2654435761 % 4294967291)
                    WHEN i % 500009 = 0 THEN 'deploy: revision ' || (i // 500009) || ' -> ' || (i // 500009 + 1) || ' rolling out'
                    ELSE 'GET /v1/accounts/' || (i * 7919 % 1000003) || ' 200 in ' || (20 + i % 97) || ' ms req=' || to_hex(i * 2654435761 % 4294967291) END AS message,
               lpad(to_hex(i * 7919 % 1000003), 32, '0') AS trace_id,
               NULL, 'req-' || i, '{{}}'::JSON,
               '/var/log/bench/' || {svc}[1 + i % 6] || '.jsonl', i // 6 + 1
        FROM range({events}) r(i)"""
    )
    t_events = time.perf_counter() - t0
    # Metric series: every service's error rate, P99 and request rate every 10 s.
    samples = span_ms // 10_000
    con.execute(
        f"""INSERT INTO metrics
        SELECT make_timestamptz(({base} + (i // 18) * 10000) * 1000) AS ts,
               {svc}[1 + (i % 18) // 3] AS service,
               ['custom.governor/error_rate_percent', 'request_latency_p99_ms', 'request_rate_per_second'][1 + i % 3] AS metric,
               CASE i % 3 WHEN 0 THEN 0.3 + (i % 7) / 100.0 WHEN 1 THEN 120 + i % 11 ELSE 400 + i % 13 END AS value,
               '{{}}'::JSON, '/var/log/bench/metrics.jsonl', i + 1
        FROM range({samples * 18}) r(i)"""
    )
    # Traces: a root span and a child every 5 s.
    traces = span_ms // 5_000
    con.execute(
        f"""INSERT INTO spans
        SELECT lpad(to_hex(i // 2), 32, '0'), lpad(to_hex(i), 16, '0'),
               CASE WHEN i % 2 = 1 THEN lpad(to_hex(i - 1), 16, '0') END,
               CASE WHEN i % 2 = 0 THEN 'api' ELSE 'app' END,
               'GET /v1/status', CASE WHEN i % 2 = 0 THEN 'SERVER' ELSE 'CLIENT' END,
               make_timestamptz(({base} + (i // 2) * 5000) * 1000),
               make_timestamptz(({base} + (i // 2) * 5000 + 60) * 1000),
               CASE WHEN i % 2 = 0 THEN 60.0 ELSE 35.0 END,
               CASE WHEN i % 97 = 0 THEN 'ERROR' ELSE 'OK' END, NULL, '{{}}'::JSON,
               '/var/log/bench/traces.jsonl', i
        FROM range({traces * 2}) r(i)"""
    )
    # An incident in the middle of the period, as another file ingested later would add it:
    # a deploy, 5 minutes of app errors, the engine's alert line.
    mid = base + span_ms // 2
    con.execute(
        f"""INSERT INTO events
        SELECT make_timestamptz(({mid} + 600000 + i * 100) * 1000), 'ERROR', 'error', 'app', 'host-1',
               'POST /internal/checkout 500 NullPointerException in CheckoutHandler.apply (revision 2)',
               NULL, NULL, 'req-x' || i, '{{}}'::JSON, '/var/log/bench/app-incident.jsonl', i + 2
        FROM range(3000) r(i)
        UNION ALL SELECT make_timestamptz(({mid} + 599000) * 1000), 'INFO', 'info', 'app', 'host-1',
               'deploy: revision 1 -> 2 rolling out', NULL, NULL, NULL, '{{}}'::JSON, '/var/log/bench/app-incident.jsonl', 1
        UNION ALL SELECT make_timestamptz(({mid} + 660000) * 1000), 'ERROR', 'error', 'ggen-engine', 'host-0',
               'ALERT error_rate_spike Sev2: error_pct > 5 for 60 s', NULL, NULL, NULL, '{{}}'::JSON, '/var/log/bench/ggen-engine.jsonl', 1
        ORDER BY 1"""
    )
    con.execute("CHECKPOINT")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "metrics", "spans")}
    con.close()
    return {"seconds": time.perf_counter() - t0, "events_seconds": t_events, **counts}


def profile(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict:
    """Run ``sql`` with DuckDB's JSON profiling; the table scan's row-group figures."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    con.execute("SET enable_profiling = 'json'")
    con.execute(f"SET profiling_output = '{out}'")
    con.execute(sql, params).fetchall()
    con.execute("SET enable_profiling = 'no_output'")
    data = json.loads(out.read_text())
    out.unlink()
    scans = []

    def walk(node: dict) -> None:
        if node.get("type") == "TABLE_SCAN":
            scans.append({k: node.get(k) for k in ("row_groups_scanned", "total_row_groups_to_scan", "rows_scanned", "intermediate_rows")} | {"filters": node.get("extra_info", {}).get("Filters", "")})
        for c in node.get("children", []):
            walk(c)

    for op in data.get("operator", []):
        walk(op)
    return {"scans": scans, "seconds": data.get("query", {}).get("total_time")}


def timed(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--db", type=Path, default=None, help="reuse or create this database (default: a temporary file)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = ap.parse_args()

    tmp = None
    db = args.db
    if db is None:
        tmp = Path(tempfile.mkdtemp(prefix="ggen-timeline-bench-"))
        db = tmp / "analyzer.duckdb"
    if not db.exists():
        info = build(db, args.events, args.days)
        print(f"built {db}: {info['events']:,} events, {info['metrics']:,} metric samples, {info['spans']:,} spans in {info['seconds']:.1f} s (events {info['events_seconds']:.1f} s)")
    size_mb = db.stat().st_size / 1e6
    print(f"database size {size_mb:,.0f} MB; machine: {os.cpu_count()} CPUs, duckdb {duckdb.__version__}")

    base = parse_iso_ms(BASE)
    mid = base + args.days * 86_400_000 // 2
    start, end = mid, mid + 30 * 60_000
    print(f"window: {iso_utc(start)} .. {iso_utc(end)} (30 min)")

    def window() -> None:
        tl = reconstruct_timeline(db, start_ms=start, end_ms=end)
        tl.render_markdown()

    def window_data() -> None:
        st = load_timeline_settings()
        c = open_analyzer_db(db)
        try:
            load_window(c, start, end, st, metric_names(st), change_pattern(st))
        finally:
            c.close()

    tl = reconstruct_timeline(db, start_ms=start, end_ms=end)  # warm the OS cache like the scan below
    t_window, all_w = timed(window, args.runs)
    t_queries, _ = timed(window_data, args.runs)

    con = duckdb.connect(str(db), read_only=True)
    configure(con)
    st = load_timeline_settings()
    queries = window_queries(start, end, st, metric_names(st), change_pattern(st))
    window_sql, window_params = queries["buckets"]
    # The same query without its time bound: what reading the whole table costs.
    full_sql = window_sql.replace("WHERE ts >= ? AND ts < ?", "")
    plain_sql = "SELECT level, count(*), sum(length(message)) FROM events GROUP BY level"
    t_full, all_f = timed(lambda: con.execute(full_sql).fetchall(), max(1, args.runs // 2))
    t_plain, _ = timed(lambda: con.execute(plain_sql).fetchall(), max(1, args.runs // 2))

    profiles = {name: profile(con, sql, params) for name, (sql, params) in queries.items()}
    prof_full = profile(con, full_sql, [])
    con.close()

    print()
    print(f"timeline of the 30-min window:    {t_window * 1000:8.1f} ms median of {args.runs} ({', '.join(f'{x * 1000:.0f}' for x in all_w)} ms)")
    print(f"   {tl.counts['log_records']:,} log records, {tl.counts['metric_samples']:,} metric samples, {tl.counts['traces']:,} traces in the window; {len(tl.phases)} phases, {len(tl.evidence)} evidence lines")
    print(f"   of which the window's DuckDB queries (open, 6 queries, results as Polars): {t_queries * 1000:.1f} ms")
    print(f"same bucket query, whole table:   {t_full * 1000:8.1f} ms median ({', '.join(f'{x * 1000:.0f}' for x in all_f)} ms)")
    print(f"plain full scan (level, message): {t_plain * 1000:8.1f} ms")
    print(f"window / full bucket scan:        {100 * t_window / t_full:8.1f} %   (goal: under 10 %)")
    print(f"window / plain full scan:         {100 * t_window / t_plain:8.1f} %")
    print()
    for label, p in [*((f"window query '{n}'", pr) for n, pr in profiles.items()), ("whole-table bucket query", prof_full)]:
        for sc in p["scans"]:
            print(
                f"EXPLAIN ANALYZE {label}: scanned {sc['row_groups_scanned']} of {sc['total_row_groups_to_scan']} row groups, "
                f"{sc['rows_scanned']:,} rows read, {sc['intermediate_rows']:,} rows kept"
                + (f"; filter {str(sc['filters'])[:140]}..." if sc["filters"] else "")
            )
    if tmp is not None and not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp is not None:
        print(f"kept {db}")


if __name__ == "__main__":
    main()
