"""The analyzer database: normalized tables that ingest fills and the timeline reads.

Times are TIMESTAMPTZ in UTC (the connection's TimeZone is UTC, so they print as UTC).
Rows are appended in file order; logs are written in time order, so DuckDB's per-row-group
min/max statistics (zone maps) let a time-window query skip the row groups outside the window.
Files whose lines are out of time order are re-sorted by ``ts`` at ingest (see pipeline).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

SCHEMA_VERSION = "1"

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS events (
        ts TIMESTAMPTZ,            -- UTC
        level VARCHAR,             -- TRACE | DEBUG | INFO | WARN | ERROR | FATAL
        raw_level VARCHAR,         -- the level as written in the source
        service VARCHAR,
        host VARCHAR,
        message VARCHAR,
        trace_id VARCHAR,          -- lowercase hex where the source gave hex/base64 ids
        span_id VARCHAR,
        request_id VARCHAR,
        attrs JSON,                -- every other field of the record
        source_file VARCHAR,       -- absolute path, or <stdin>
        source_line BIGINT         -- 1-based line (record number for CSV, record index for JSON arrays)
    )""",
    """CREATE TABLE IF NOT EXISTS spans (
        trace_id VARCHAR,
        span_id VARCHAR,
        parent_span_id VARCHAR,    -- NULL for a root span
        service VARCHAR,
        name VARCHAR,
        kind VARCHAR,              -- INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
        start_ts TIMESTAMPTZ,
        end_ts TIMESTAMPTZ,
        duration_ms DOUBLE,
        status VARCHAR,            -- UNSET | OK | ERROR
        status_message VARCHAR,
        attrs JSON,                -- span attributes, plus resource attributes under "resource"
        source_file VARCHAR,
        source_index BIGINT        -- 0-based position of the span in its file
    )""",
    """CREATE TABLE IF NOT EXISTS metrics (
        ts TIMESTAMPTZ,
        service VARCHAR,
        metric VARCHAR,
        value DOUBLE,
        labels JSON,
        source_file VARCHAR,
        source_line BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS rejects (
        source_file VARCHAR,
        line BIGINT,               -- 1-based line (or record index) that was rejected
        reason VARCHAR,
        raw BLOB,                  -- the raw bytes, cut to 2048
        raw_bytes BIGINT           -- length of the whole raw line in bytes
    )""",
    """CREATE TABLE IF NOT EXISTS ingested_files (
        path VARCHAR,              -- absolute path, or <stdin>
        size BIGINT,
        mtime TIMESTAMPTZ,
        sha256 VARCHAR,            -- of the file's content (decompressed for .gz; as stored if damaged)
        format VARCHAR,
        kind VARCHAR,              -- events | metrics | traces
        lines_read BIGINT,         -- total lines (or records) consumed from this file so far
        rows_ingested BIGINT,      -- events + spans + metrics rows from this file
        continuation_lines BIGINT,
        rejects BIGINT,
        ingested_at TIMESTAMPTZ
    )""",
    "CREATE TABLE IF NOT EXISTS ingest_meta (key VARCHAR, value VARCHAR)",
)


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None, threads: int | None = None) -> None:
    """Session settings every analyzer connection uses: UTC display, bounded memory."""
    con.execute("SET TimeZone = 'UTC'")
    # Progress is tracked (for query_progress) but never drawn by DuckDB itself.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the normalized tables if they do not exist (idempotent)."""
    for stmt in DDL:
        con.execute(stmt)
    row = con.execute("SELECT value FROM ingest_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        con.execute("INSERT INTO ingest_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


def open_db(db_path: Path | str, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the analyzer database with its schema; the caller closes it."""
    path = Path(db_path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        configure(con, memory_limit=memory_limit)
        if not read_only:
            create_schema(con)
    except Exception:
        con.close()
        raise
    return con
