"""Inputs and bookkeeping: .gz, stdin, directories and globs, missing paths, re-ingest, grown
and rewritten files, hostile bytes, chunk boundaries and the accounting identity."""
from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer.ingest.pipeline as pipeline
from analyzer.ingest import IngestError, ingest_paths
from ingest_support import FIXTURES, ingest, iso, rows, write

JSONL = "".join(json.dumps({"ts": 1769350500 + i, "level": "info", "msg": f"line {i + 1}"}) + "\n" for i in range(50))


def test_gz_file_is_read_and_hashed(tmp_path: Path) -> None:
    p = tmp_path / "app.jsonl.gz"
    p.write_bytes(gzip.compress(JSONL.encode()))
    s = ingest(tmp_path, p)
    assert s.rows_ingested == 50 and s.files[0].format == "jsonl"
    assert rows(tmp_path, "SELECT message FROM events WHERE source_line = 50")[0]["message"] == "line 50"


def test_stdin_dash(tmp_path: Path) -> None:
    s = ingest(tmp_path, "-", stdin=io.BytesIO(JSONL.encode()))
    assert s.files[0].source == "<stdin>" and s.rows_ingested == 50
    again = ingest(tmp_path, "-", stdin=io.BytesIO(JSONL.encode()))
    assert again.files[0].status == "duplicate" and again.rows_ingested == 0
    assert rows(tmp_path, "SELECT count(*) AS n FROM events")[0]["n"] == 50


def test_directories_and_globs(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    write(d / "a.jsonl", JSONL)
    write(d / "sub" / "b.log", (FIXTURES / "java_app.log").read_text())
    write(d / ".hidden.log", "ignored\n")
    s = ingest(tmp_path, d)
    assert sorted(Path(f.source).name for f in s.files) == ["a.jsonl", "b.log"]
    t = ingest(tmp_path / "g", str(d / "**" / "*.log"))
    assert [Path(f.source).name for f in t.files] == ["b.log"]


def test_missing_paths_and_empty_globs_are_errors_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="nope.log: no such file or directory"):
        ingest_paths([str(tmp_path / "nope.log")], tmp_path / "a.duckdb")
    with pytest.raises(IngestError, match=r"\*.zzz: no files match"):
        ingest_paths([str(tmp_path / "*.zzz")], tmp_path / "a.duckdb")


def test_unreadable_directory_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "logs"
    write(d / "a.log", "x\n")
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != d)
    with pytest.raises(IngestError, match="logs: cannot read directory"):
        ingest_paths([str(d)], tmp_path / "a.duckdb")


def test_reingest_does_not_duplicate_and_detects_copies(tmp_path: Path) -> None:
    p = write(tmp_path / "a.jsonl", JSONL)
    ingest(tmp_path, p)
    again = ingest(tmp_path, p)
    assert again.files[0].status == "unchanged" and again.rows_ingested == 0
    os.utime(p, None)  # touched, same bytes
    touched = ingest(tmp_path, p)
    assert touched.files[0].status == "unchanged"
    copy = write(tmp_path / "copy.jsonl", JSONL)
    dup = ingest(tmp_path, copy)
    assert dup.files[0].status == "duplicate" and str(p.resolve()) in dup.files[0].note
    assert rows(tmp_path, "SELECT count(*) AS n FROM events")[0]["n"] == 50
    assert rows(tmp_path, "SELECT count(*) AS n FROM ingested_files")[0]["n"] == 1


def test_grown_file_adds_only_new_lines_and_rewritten_file_replaces(tmp_path: Path) -> None:
    p = write(tmp_path / "a.jsonl", JSONL)
    ingest(tmp_path, p)
    with open(p, "a") as f:
        f.write(json.dumps({"ts": 1769351000, "msg": "appended"}) + "\n")
    grown = ingest(tmp_path, p)
    assert grown.files[0].status == "appended" and grown.files[0].lines_read == 1 and grown.rows_ingested == 1
    assert rows(tmp_path, "SELECT source_line FROM events WHERE message = 'appended'")[0]["source_line"] == 51
    assert rows(tmp_path, "SELECT lines_read, rows_ingested FROM ingested_files")[0] == {"lines_read": 51, "rows_ingested": 51}
    write(p, json.dumps({"ts": 1769352000, "msg": "rotated"}) + "\n")
    replaced = ingest(tmp_path, p)
    assert replaced.files[0].status == "replaced"
    assert [r["message"] for r in rows(tmp_path, "SELECT message FROM events")] == ["rotated"]


def test_hostile_bytes_never_abort(tmp_path: Path) -> None:
    good = json.dumps({"ts": 1769350500, "msg": "ok"}).encode()
    data = b"\n".join(
        [
            good,
            b"x" * (10 * 1024 * 1024),  # a 10 MB line
            good,
            bytes(b for b in range(256) if b != 10) * 4,  # binary garbage (no newline in it)
            b'{"ts": 1769350500, "msg": "caf\xe9"}',  # invalid UTF-8
            good + b"\r",  # CRLF ending
            b'{"ts": 1769350500, "msg": "a\rb"}',  # lone carriage return inside the line
            b"\x01\x02\x03\x04",  # the line reader's own separator
            good,
        ]
    )
    s = ingest(tmp_path, write(tmp_path / "hostile.jsonl", data))
    f = s.files[0]
    assert f.lines_read == 9
    assert f.events == 5 and f.rejects == 4
    reasons = {r["line"]: r["reason"] for r in rows(tmp_path, "SELECT line, reason FROM rejects")}
    assert reasons[2].startswith("line longer than 1048576 bytes (10485760 bytes)")
    assert "UTF-8" in reasons[4] or "binary" in reasons[4]
    assert reasons[5].startswith("invalid UTF-8")
    assert "binary" in reasons[8]
    raw = rows(tmp_path, "SELECT raw, raw_bytes FROM rejects WHERE line = 2")[0]
    assert raw["raw_bytes"] == 10 * 1024 * 1024 and 0 < len(raw["raw"]) <= 2048
    assert rows(tmp_path, "SELECT raw FROM rejects WHERE line = 5")[0]["raw"] == b'{"ts": 1769350500, "msg": "caf\xe9"}'
    msgs = {r["source_line"]: r["message"] for r in rows(tmp_path, "SELECT source_line, message FROM events")}
    assert msgs[6] == "ok" and msgs[7] == "a\u240db"


def test_line_numbers_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines keep their numbers when a file is cut into many chunks (and one line spans reads)."""
    monkeypatch.setattr(pipeline, "CHUNK_BYTES", 4096)
    lines = [json.dumps({"ts": 1769350500 + i, "msg": f"n={i + 1}", "pad": "p" * (i % 97)}) for i in range(3000)]
    lines[1500] = json.dumps({"ts": 1769350500, "msg": "n=1501", "pad": "q" * 9000})
    s = ingest(tmp_path, write(tmp_path / "big.jsonl", "\n".join(lines)))  # no final newline
    assert s.rows_ingested == 3000
    bad = rows(tmp_path, "SELECT count(*) AS n FROM events WHERE message <> 'n=' || source_line")
    assert bad[0]["n"] == 0


def test_time_order_is_kept_for_unordered_files(tmp_path: Path) -> None:
    """A file whose lines jump around in time is stored sorted by ts, so zone maps stay narrow."""
    lines = [json.dumps({"ts": 1769350500 + ((i * 7919) % 20000) * 60, "msg": str(i)}) for i in range(20000)]
    ingest(tmp_path, write(tmp_path / "shuffled.jsonl", "\n".join(lines) + "\n"))
    got = rows(tmp_path, "SELECT count(*) AS n FROM (SELECT ts, lag(ts) OVER (ORDER BY rowid) AS prev FROM events) WHERE ts < prev")
    assert got[0]["n"] == 0
    # Line numbers still point back to the source.
    one = rows(tmp_path, "SELECT source_line, message FROM events WHERE message = '123'")[0]
    assert one["source_line"] == 124


TEXT_LINES = st.lists(
    st.one_of(
        st.just("2026-01-25 14:19:30,512 [main] ERROR com.acme.X - boom"),
        st.just("2026-01-25 14:19:31,000 [main] INFO com.acme.X - ok"),
        st.just("\tat com.acme.X.run(X.java:1)"),
        st.just("2026-13-45 14:19:31,000 [main] INFO com.acme.X - impossible"),
        st.just(""),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        st.text(max_size=40),
    ),
    max_size=40,
)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=TEXT_LINES, crlf=st.booleans())
def test_accounting_identity_holds_for_any_input(tmp_path_factory: pytest.TempPathFactory, lines: list[str], crlf: bool) -> None:
    tmp = tmp_path_factory.mktemp("acct")
    sep = "\r\n" if crlf else "\n"
    data = sep.join(lines).encode("utf-8", "surrogatepass") if lines else b""
    p = write(tmp / "x.log", data)
    s = ingest_paths([str(p)], tmp / "a.duckdb", fmt="log4j")
    f = s.files[0]
    expected_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert f.lines_read == expected_lines
    assert f.lines_read == f.rows_ingested + f.continuation_lines + f.rejects
    con = __import__("analyzer.ingest", fromlist=["open_db"]).open_db(tmp / "a.duckdb")
    n_events, n_rejects = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejects)").fetchone()
    con.close()
    assert (n_events, n_rejects) == (f.rows_ingested, f.rejects)


def test_truncated_and_damaged_gzip_keep_what_can_be_read(tmp_path: Path) -> None:
    data = gzip.compress(JSONL.encode() * 40)  # 2,000 lines
    write(tmp_path / "cut.jsonl.gz", data[: len(data) // 2])
    write(tmp_path / "junk.log.gz", b"\x1f\x8b" + b"not deflate at all")
    s = ingest(tmp_path, tmp_path / "cut.jsonl.gz", tmp_path / "junk.log.gz")
    cut, junk = s.files
    assert cut.format == "jsonl" and cut.events > 100 and cut.slow_path
    last = rows(tmp_path, "SELECT line, reason FROM rejects WHERE source_file LIKE '%cut.jsonl.gz' ORDER BY line DESC LIMIT 1")[0]
    assert last["line"] == cut.lines_read and "ends in the middle of a gzip stream" in last["reason"]
    assert junk.rows_ingested == 0 and junk.rejects == 1
    assert "damaged gzip data" in rows(tmp_path, "SELECT reason FROM rejects WHERE source_file LIKE '%junk.log.gz'")[0]["reason"]
    # Line numbers of the salvaged part are still right.
    assert rows(tmp_path, "SELECT count(*) AS n FROM events WHERE message <> 'line ' || (((source_line - 1) % 50) + 1)")[0]["n"] == 0


def test_progress_reports_reach_the_total(tmp_path: Path) -> None:
    seen: list = []
    p = write(tmp_path / "a.jsonl", JSONL * 200)
    ingest(tmp_path, p, quiet=False, progress=seen.append)
    assert seen and seen[-1].all_bytes_done == seen[-1].all_bytes_total == p.stat().st_size
    assert all(b.all_bytes_done <= b.all_bytes_total for b in seen)


def test_a_byte_order_mark_does_not_hide_the_format(tmp_path: Path) -> None:
    s = ingest(tmp_path, write(tmp_path / "bom.log", b"\xef\xbb\xbf2026-01-25T14:25:00Z ERROR peak depth 3847\n2026-01-25T14:26:00Z INFO ok\n"))
    assert s.files[0].format == "iso_level_message" and s.rows_ingested == 2
    assert rows(tmp_path, "SELECT source_line, message FROM events ORDER BY 1")[0] == {"source_line": 1, "message": "peak depth 3847"}
