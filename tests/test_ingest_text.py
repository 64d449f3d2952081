"""Plain-text logs: continuation lines, syslog years, time zones, access logs, unknown files."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from ingest_support import FIXTURES, ingest, iso, rows, write


def test_stack_traces_attach_to_the_record_above(tmp_path: Path) -> None:
    s = ingest(tmp_path, FIXTURES / "java_app.log")
    f = s.files[0]
    assert (f.format, f.lines_read, f.events, f.continuation_lines, f.rejects) == ("log4j", 9, 4, 5, 0)
    first = rows(tmp_path, "SELECT * FROM events WHERE source_line = 1")[0]
    assert first["level"] == "ERROR"
    assert first["message"].splitlines() == [
        "call to upstream failed: 503 Service Unavailable",
        "java.lang.IllegalStateException: upstream returned 503",
        "\tat com.acme.actions.UpstreamClient.call(UpstreamClient.java:42)",
        "\tat com.acme.actions.Handler.run(Handler.java:17)",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "\t... 12 more",
    ]
    assert [r["source_line"] for r in rows(tmp_path, "SELECT source_line FROM events ORDER BY source_line")] == [1, 7, 8, 9]


def test_python_traceback_and_orphan_continuations(tmp_path: Path) -> None:
    text = (
        "Traceback (most recent call last):\n"  # nothing above it: a reject
        "2026-01-25 14:15:02,117 - governor.scaler - ERROR - scaling failed\n"
        "Traceback (most recent call last):\n"
        '  File "scaler.py", line 3, in scale\n'
        "ValueError: concurrency above quota\n"
        "\n"
        "2026-01-25 14:15:03,000 - governor.scaler - INFO - retry scheduled\n"
    )
    s = ingest(tmp_path, write(tmp_path / "py.log", text))
    f = s.files[0]
    assert (f.format, f.events, f.continuation_lines, f.rejects) == ("python_logging", 2, 4, 1)
    msg = rows(tmp_path, "SELECT message FROM events WHERE source_line = 2")[0]["message"]
    assert msg.endswith("ValueError: concurrency above quota")
    reject = rows(tmp_path, "SELECT line, reason FROM rejects")[0]
    assert reject["line"] == 1 and "no record above" in reject["reason"]


def test_syslog_year_is_inferred_from_mtime(tmp_path: Path) -> None:
    p = write(tmp_path / "messages", "Dec 31 23:59:58 gov-1 governor[1]: before midnight\nJan  1 00:00:02 gov-1 governor[1]: after midnight\n")
    t = datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc).timestamp()
    os.utime(p, (t, t))
    ingest(tmp_path, p)
    got = [iso(r["ts"]) for r in rows(tmp_path, "SELECT ts FROM events ORDER BY source_line")]
    assert got == ["2025-12-31T23:59:58Z", "2026-01-01T00:00:02Z"]


def test_tz_applies_to_offsetless_text_timestamps(tmp_path: Path) -> None:
    p = write(tmp_path / "n.log", "2026/01/25 15:19:31 [error] 31#31: *1 upstream timed out\n")
    ingest(tmp_path, p, tz="Europe/Berlin")
    assert iso(rows(tmp_path, "SELECT ts FROM events")[0]["ts"]) == "2026-01-25T14:19:31Z"


def test_access_log_levels_and_non_matching_lines(tmp_path: Path) -> None:
    s = ingest(tmp_path, FIXTURES / "nginx_access.log", service="gateway")
    f = s.files[0]
    assert (f.format, f.events, f.rejects, f.continuation_lines) == ("access_log", 3, 1, 0)
    levels = [r["level"] for r in rows(tmp_path, "SELECT level FROM events ORDER BY source_line")]
    assert levels == ["ERROR", "INFO", "WARN"]
    assert {r["service"] for r in rows(tmp_path, "SELECT service FROM events")} == {"gateway"}
    assert rows(tmp_path, "SELECT reason FROM rejects")[0]["reason"] == "does not match format access_log"


def test_a_file_no_format_explains_is_all_rejects(tmp_path: Path) -> None:
    s = ingest(tmp_path, write(tmp_path / "notes.txt", "hello\nworld\n"))
    assert s.files[0].format == "unknown" and s.rejects == 2
    assert {r["reason"] for r in rows(tmp_path, "SELECT reason FROM rejects")} == {"no known format matches this file"}


def test_forced_format_overrides_detection(tmp_path: Path) -> None:
    p = write(tmp_path / "x.log", "2026-01-25T14:25:00Z ERROR peak depth 3847\n")
    s = ingest(tmp_path, p, fmt="text:iso_level_message")
    assert s.files[0].format == "iso_level_message" and s.rows_ingested == 1
    t = ingest(tmp_path / "b", p, fmt="jsonl")
    assert t.files[0].format == "jsonl" and t.rejects == 1
