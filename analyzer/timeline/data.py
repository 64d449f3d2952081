"""The window's data from the analyzer database: every query is bounded by the time window, so
DuckDB's per-row-group min/max statistics skip the row groups outside it (the tables are written
in time order); aggregation happens in DuckDB, and only small results come back as Polars frames."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from analyzer.timeline.model import TimelineBadInput, TimelineError, TimelineNotFound
from analyzer.timeline.settings import TimelineSettings

BAD_LEVELS = ("ERROR", "FATAL", "WARN")
TABLES = ("events", "spans", "metrics")
# The service of a line whose format names none: the log file's name up to its first dot
# (logs/action-handler.log -> action-handler).
# A DuckDB database file carries these bytes after its 8-byte checksum.
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_AT = 8
SERVICE_SQL = "coalesce(service, regexp_extract(source_file, '([^/.]+)[^/]*$', 1))"


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def open_analyzer_db(db_path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open the analyzer database read-only; a one-line TimelineError when it is missing,
    locked, damaged or not an analyzer database."""
    path = Path(db_path)
    if not path.exists():
        raise TimelineNotFound(f"{path}: no analyzer database here (load logs with `ggen ingest` first, or pass --db FILE)")
    if path.is_dir():
        from analyzer.ingest.parquet import is_parquet_dataset, open_parquet_dataset

        if not is_parquet_dataset(path):
            raise TimelineBadInput(f"{path}: is a directory, not an analyzer database (nor a Parquet dataset from `ggen ingest --parquet-out`)")
        return open_parquet_dataset(path)  # read-only: views over the Parquet files
    try:
        with path.open("rb") as fh:
            head = fh.read(DUCKDB_MAGIC_AT + len(DUCKDB_MAGIC))
    except OSError as exc:
        raise TimelineError(f"{path}: cannot read the analyzer database ({exc.strerror or exc})") from None
    if head[DUCKDB_MAGIC_AT:] != DUCKDB_MAGIC:
        # DuckDB would open a file it does not recognise by its name (a .csv as a query, ...) and
        # fail with a message about something else: say what the file is not.
        raise TimelineBadInput(f"{path}: not an analyzer database (not a DuckDB file; `ggen ingest` makes one)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TimelineError(f"{path}: cannot open the analyzer database ({first})") from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    except duckdb.Error as exc:
        con.close()
        raise TimelineError(f"{path}: cannot read the analyzer database ({str(exc).splitlines()[0]})") from None
    missing = [t for t in TABLES if t not in have]
    if missing:
        con.close()
        raise TimelineBadInput(f"{path}: not an analyzer database (no {', '.join(missing)} table; made by `ggen ingest`?)")
    return con


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pl.DataFrame:
    try:
        return con.sql(sql, params=params).pl()
    except duckdb.Error as exc:
        raise TimelineError(f"analyzer database query failed ({str(exc).splitlines()[0]})") from None


@dataclass
class WindowData:
    """What the window holds, already reduced: log-rate buckets, change lines, metric samples,
    a per-trace summary and the spans of the traces worth reading."""

    log_records: int
    data_start_ms: int | None
    data_end_ms: int | None
    buckets: pl.DataFrame  # service, bucket_ms, bad, errors, total, first_ms, first_file, first_line, first_message
    changes: pl.DataFrame  # t, level, service, message, attrs, file, line
    metrics: pl.DataFrame  # t, service, metric, value, labels, file, line
    traces: pl.DataFrame  # trace_id, t, root_service, root_ms, failed, spans
    spans: pl.DataFrame  # trace_id, span_id, parent, service, name, kind, t, duration_ms, status, message, peer, file, idx
    disorder: pl.DataFrame  # file, lines, late: lines in time slices that come after a later slice's lines


def metric_names(settings: TimelineSettings) -> list[str]:
    """The metric series a timeline reads: the runbook signals and the health series."""
    return sorted({s.metric for s in settings.signals} | set(settings.anomaly.floor))


def change_pattern(settings: TimelineSettings) -> str:
    """One regular expression matching every kind of change or action line."""
    return "|".join(f"(?:{c.pattern})" for c in settings.changes)


def window_queries(start_ms: int, end_ms: int, settings: TimelineSettings, metric_names: list[str], change_pattern: str) -> dict[str, tuple[str, list[Any]]]:
    """The window's independent queries as ``{name: (sql, params)}``: each starts by bounding
    the time column, which is what lets DuckDB skip the row groups outside the window."""
    s, e = _dt(start_ms), _dt(end_ms)
    bucket = settings.anomaly.log_bucket_s * 1000
    bad = ", ".join(f"'{x}'" for x in BAD_LEVELS)
    return {
        "buckets": (
            f"""SELECT source_file AS file, {SERVICE_SQL} AS service,
                   (epoch_ms(ts) // {bucket}) * {bucket} AS bucket_ms,
                   min(source_line) AS min_line, max(source_line) AS max_line,
                   count(*) FILTER (WHERE level IN ({bad})) AS bad,
                   count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
                   count(*) AS total,
                   min(epoch_ms(ts)) AS any_ms,
                   max(epoch_ms(ts)) AS last_ms,
                   arg_min(struct_pack(t := epoch_ms(ts), f := source_file, l := source_line, m := message),
                           struct_pack(t := ts, f := source_file, l := source_line)) FILTER (WHERE level IN ({bad})) AS first
            FROM events WHERE ts >= ? AND ts < ?
            GROUP BY ALL""",
            [s, e],
        ),
        "changes": (
            f"""SELECT epoch_ms(ts) AS t, level, {SERVICE_SQL} AS service, split_part(message, chr(10), 1) AS message,
                   CAST(attrs AS VARCHAR) AS attrs, source_file AS file, source_line AS line
            FROM events WHERE ts >= ? AND ts < ? AND regexp_matches(message, ?)
            ORDER BY ts, source_file, source_line LIMIT ?""",
            [s, e, change_pattern, settings.window.max_log_records],
        ),
        "metrics": (
            """SELECT epoch_ms(ts) AS t, service, metric, value, CAST(labels AS VARCHAR) AS labels,
                  source_file AS file, source_line AS line
           FROM metrics WHERE ts >= ? AND ts < ? AND list_contains(?, metric)
           ORDER BY ts, source_file, source_line""",
            [s, e, sorted(set(metric_names))],
        ),
        "traces": (
            """SELECT trace_id, min(epoch_ms(start_ts)) AS t,
                  any_value(service ORDER BY start_ts) FILTER (WHERE parent_span_id IS NULL) AS root_service,
                  max(duration_ms) FILTER (WHERE parent_span_id IS NULL) AS root_ms,
                  bool_or(status = 'ERROR') AS failed,
                  count(*) AS spans
           FROM spans WHERE start_ts >= ? AND start_ts < ?
           GROUP BY trace_id ORDER BY t, trace_id""",
            [s, e],
        ),
    }


def load_window(
    con: duckdb.DuckDBPyConnection,
    start_ms: int,
    end_ms: int,
    settings: TimelineSettings,
    metric_names: list[str],
    change_pattern: str,
) -> WindowData:
    """Run the window's queries (each filtered on the time column first). The independent ones
    run at the same time on cursors of the one connection: each is small, so their fixed costs
    overlap instead of adding up."""
    s, e = _dt(start_ms), _dt(end_ms)
    queries = window_queries(start_ms, end_ms, settings, metric_names, change_pattern)
    cursors = {name: con.cursor() for name in queries}
    try:
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            futures = {name: pool.submit(_frame, cursors[name], sql, params) for name, (sql, params) in queries.items()}
            got = {name: f.result() for name, f in futures.items()}
    finally:
        for c in cursors.values():
            c.close()
    buckets, changes, metrics, traces = got["buckets"], got["changes"], got["metrics"], got["traces"]
    if buckets.height:
        first = buckets.get_column("first")
        buckets = buckets.drop("first").with_columns(
            first.struct.field("t").alias("first_ms"),
            first.struct.field("f").alias("first_file"),
            first.struct.field("l").alias("first_line"),
            first.struct.field("m").alias("first_message"),
        )
        buckets = buckets.with_columns(pl.col("service").fill_null("?")).sort(["service", "bucket_ms", "file"])
    log_records = int(buckets.get_column("total").sum()) if buckets.height else 0
    starts: list[int] = []
    ends: list[int] = []
    for frame, lo, hi in ((buckets, "any_ms", "last_ms"), (metrics, "t", "t"), (traces, "t", "t")):
        if frame.height:
            starts.append(int(frame.get_column(lo).min()))  # type: ignore[arg-type]
            ends.append(int(frame.get_column(hi).max()))  # type: ignore[arg-type]
    spans = pl.DataFrame()
    if traces.height:
        wanted = _traces_to_read(traces, settings.window.max_traces)
        spans = _frame(
            con,
            """SELECT trace_id, span_id, parent_span_id AS parent, service, name, kind,
                      epoch_ms(start_ts) AS t, duration_ms, status, status_message AS message,
                      json_extract_string(attrs, '$."peer.service"') AS peer, source_file AS file, source_index AS idx
               FROM spans WHERE start_ts >= ? AND start_ts < ? AND list_contains(?, trace_id)
               ORDER BY start_ts, source_file, source_index""",
            [s, e, wanted],
        )
    return WindowData(
        log_records=log_records,
        data_start_ms=min(starts) if starts else None,
        data_end_ms=max(ends) if ends else None,
        buckets=buckets,
        changes=changes,
        metrics=metrics,
        traces=traces,
        spans=spans,
        disorder=_disorder(buckets),
    )


def _disorder(buckets: pl.DataFrame) -> pl.DataFrame:
    """Per file, the lines that sit after lines at least two time slices later (a file out of
    time order; jitter within a slice is normal): from the per-slice line ranges, so no extra
    pass over the window."""
    rows: list[tuple[str, int, int]] = []
    if buckets.height == 0:
        return pl.DataFrame({"file": [], "lines": [], "late": []}, schema={"file": pl.String, "lines": pl.Int64, "late": pl.Int64})
    for (file,), grp in buckets.sort(["file", "bucket_ms"]).group_by(["file"], maintain_order=True):
        slices = grp.select("bucket_ms", "min_line", "max_line", "total").rows()
        size = min((b - a for (a, *_), (b, *_) in zip(slices, slices[1:]) if b > a), default=0)
        late = 0
        # Walk back in time keeping the smallest line number of the slices at least two slices
        # later: an earlier slice holding a larger line number was written late.
        later_min = None
        j = len(slices)
        for i in range(len(slices) - 1, -1, -1):
            b, _mn, mx, n = slices[i]
            while j > i + 1 and slices[j - 1][0] >= b + 2 * size:
                j -= 1
                later_min = slices[j][1] if later_min is None else min(later_min, slices[j][1])
            if later_min is not None and mx > later_min:
                late += int(n)
        rows.append((str(file), int(grp.get_column("total").sum()), late))
    return pl.DataFrame(rows, schema={"file": pl.String, "lines": pl.Int64, "late": pl.Int64}, orient="row")


def _traces_to_read(traces: pl.DataFrame, limit: int) -> list[str]:
    """Failing traces first, then the slowest, then the rest, up to ``limit`` (doc 04: 1,000)."""
    ordered = traces.sort(["failed", "root_ms", "trace_id"], descending=[True, True, False], nulls_last=True)
    return ordered.head(limit).get_column("trace_id").to_list()
