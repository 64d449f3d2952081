"""The shortcuts ingest takes for speed give the answers of the slow, obvious way: the byte scan
that decides whether DuckDB may read a file directly (across its block boundaries), regex groups
read four at a time against one read of them all, line numbers set after the rows are committed
(right across parallel batches, and nothing left behind by a run killed halfway), and format
definitions remembered by content once validated."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from pathlib import Path

import duckdb
import pytest

from analyzer.ingest import ingest_paths, load_catalog, pipeline
from analyzer.ingest import sql as q
from analyzer.ingest.schema import create_schema
from ingest_support import ingest, rows

BLOCK = 1 << 20  # the scan reads 1 MB at a time


def _scan(data: bytes) -> pipeline._Scan:
    return pipeline._scan(io.BytesIO(data), hashlib.sha256(), False)


def _filler(n: int) -> bytes:
    line = b"2026-01-25T14:15:00Z INFO filler line\n"
    return (line * (n // len(line) + 1))[:n]


@pytest.mark.parametrize("offset", [-3, -2, -1, 0, 1])
def test_marker_split_across_blocks_is_found(offset: int) -> None:
    head = _filler(BLOCK + offset)
    s = _scan(head + b"x\x01\x02\x03y\n" + _filler(5000))
    assert s.problem.startswith("control bytes")


@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_crlf_across_blocks_is_fine_and_a_lone_cr_is_not(offset: int) -> None:
    head = _filler(BLOCK + offset - 1)
    assert _scan(head + b"\r\n" + _filler(5000)).problem == ""
    assert _scan(head + b"\rz\n" + _filler(5000)).problem == "carriage return inside a line"


def test_scan_counts_lines_and_hashes_every_byte() -> None:
    data = _filler(3 * BLOCK + 17) + b"last line without newline"
    s = _scan(data)
    assert s.lines == data.count(b"\n") + 1
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    assert s.problem == ""
    assert _scan(data + b"\r").problem == ""  # a trailing CR at the very end is a line ending


def _mutations(line: str) -> list[str]:
    """The sample line and near misses: cut short, a character swapped, doubled spaces."""
    out = [line, line + " trailing \u00e9", line.replace(" ", "  ", 1), "", "\tat com.acme.X.run(X.java:1)"]
    for i in range(0, len(line), max(1, len(line) // 12)):
        out.append(line[:i])
        for ch in ":[]<> -x1":
            out.append(line[:i] + ch + line[i + 1 :])
    return out


FORMATS = load_catalog().text


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_groups_read_in_batches_match_one_read(fmt) -> None:
    """Reading a pattern's groups four at a time (one_pass formats) finds exactly what one read
    of all groups finds, on every sample line and its near misses."""
    lines = [m for s in fmt.sample for m in _mutations(s.line)]
    con = duckdb.connect()
    create_schema(con)
    con.execute("SET TimeZone = 'UTC'")
    src = "(SELECT n, line FROM _lines)"
    con.execute("CREATE TABLE _lines AS SELECT * FROM (SELECT unnest(range(1, len(?) + 1)) AS n, unnest(?) AS line)", [lines, lines])
    got = []
    for one_pass in (True, False):
        variant = dataclasses.replace(fmt, one_pass=one_pass)
        sql = q.text_events_sql(src, "f", variant, load_catalog().levels, None, 2026, "2026-01-25T16:00:00+00:00")
        if one_pass and len(fmt.group_names) > q.CAPTURES_PER_MATCH:
            assert sql.count("regexp_extract(") >= 2
        con.execute("DELETE FROM events")
        con.execute(sql)
        got.append(con.execute("SELECT * FROM events ORDER BY source_line").fetchall())
    con.close()
    assert got[0] == got[1]
    assert sum(1 for r in got[0] if r[0] is not None) >= len(fmt.sample)  # the samples themselves parse


def test_capture_only_keeps_the_pattern_and_drops_other_captures() -> None:
    rx = r"^(?P<a>[^\](?P<]+)\[(?P<b>\d+)\] (?P<c>x|\(\?P<d>\))"
    out = q.capture_only(rx, {"b"})
    assert out == r"^(?:[^\](?P<]+)\[(?P<b>\d+)\] (?:x|\(\?P<d>\))"
    assert re.compile(out).groupindex == {"b": 1}
    for text in ["abc[12] x", "a[1] (?P<d>)", "a<P[1] x", "no"]:
        assert bool(re.match(rx, text)) == bool(re.match(out, text))


# ------------------------------------------------------------------------------------------
# Two phases: rows are committed, then numbered


def _log(n: int, start: int = 0) -> str:
    return "".join(f"2026-01-25T14:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z INFO n={start + i + 1}\n" for i in range(n))


def test_line_numbers_hold_across_parallel_batches(tmp_path: Path) -> None:
    """Enough lines for several read batches and row groups written by parallel threads."""
    p = tmp_path / "big.log"
    p.write_text(_log(300_000))
    s = ingest(tmp_path, p)
    assert s.rows_ingested == 300_000
    got = rows(tmp_path, "SELECT count(*) AS bad, max(source_line) AS last FROM events WHERE message <> 'n=' || source_line")
    assert got[0]["bad"] == 0
    assert rows(tmp_path, "SELECT min(source_line) AS a, max(source_line) AS b, count(DISTINCT source_line) AS c FROM events")[0] == {"a": 1, "b": 300_000, "c": 300_000}


def test_a_run_killed_between_its_phases_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "app.log"
    p.write_text(_log(100))
    ingest(tmp_path, p)
    # The file is rewritten; the next run dies after committing its rows, before numbering them.
    p.write_text(_log(80, start=1000))
    real = pipeline._number_lines

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_number_lines", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([str(p)], tmp_path / "a.duckdb")
    # The old rows are still there, the new ones wait unnumbered.
    left = rows(tmp_path, "SELECT count(*) FILTER (WHERE source_line IS NULL) AS new, count(*) FILTER (WHERE source_line IS NOT NULL) AS old FROM events")[0]
    assert left == {"new": 80, "old": 100}
    monkeypatch.setattr(pipeline, "_number_lines", real)
    s = ingest(tmp_path, p)
    assert s.files[0].status == "replaced" and s.rows_ingested == 80
    got = rows(tmp_path, "SELECT count(*) AS n, count(*) FILTER (WHERE message = 'n=' || (source_line + 1000)) AS ok FROM events")[0]
    assert got == {"n": 80, "ok": 80}


# ------------------------------------------------------------------------------------------
# Format definitions validated once per content


def test_validated_formats_are_remembered_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from analyzer.ingest import formats
    from engine.policy.loader import PolicyError

    monkeypatch.setenv("GGEN_CACHE_DIR", str(tmp_path / "cache"))
    d = tmp_path / "fmt"
    shutil.copytree(formats.formats_dir(), d)
    first = formats.load_catalog(d)  # validated, then remembered
    [remembered] = list((tmp_path / "cache").glob("log-formats-*.json"))
    assert formats.load_catalog(d) == first  # read back without validating
    # A changed file is validated again: a broken one is reported, not read from the cache.
    f = d / "text" / "log4j.toml"
    f.write_text(f.read_text().replace('level_from = "level"', 'level_from = "lvl"'))
    with pytest.raises(PolicyError) as err:
        formats.load_catalog(d)
    assert "log4j.toml" in str(err.value) and "level_from" in str(err.value)
    # A damaged cache entry is ignored (and rewritten by the next validation).
    f.write_text(f.read_text().replace('level_from = "lvl"', 'level_from = "level"'))
    remembered.write_text("{not json")
    assert formats.load_catalog(d) == first
    assert json.loads(remembered.read_text())["fields"]["ts"][0] == "timestamp"


def test_a_remembered_catalog_loads_without_pydantic(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "GGEN_CACHE_DIR": str(tmp_path)}
    code = "import sys, analyzer.ingest as a; c = a.load_catalog(); print(len(c.text), 'pydantic' in sys.modules)"
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert first[1] == "True" and again == [first[0], "False"]


def test_ingest_writes_smaller_row_groups_and_readers_open_the_file_as_usual(tmp_path: Path) -> None:
    p = tmp_path / "rg.log"
    p.write_text(_log(100_000))
    ingest(tmp_path, p)
    groups = rows(tmp_path, "SELECT row_group_id, max(count) AS n FROM pragma_storage_info('events') WHERE column_name = 'ts' GROUP BY 1 ORDER BY 1")
    assert len(groups) > 100_000 // 122_880 + 1
    assert max(g["n"] for g in groups) == pipeline.ROW_GROUP_ROWS
    assert sum(g["n"] for g in groups) == 100_000


def test_ingest_spills_next_to_its_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-sort bigger than the memory limit spills beside the database, never into the cwd."""
    import threading
    import time

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    lines = [json.dumps({"ts": 1769350500 + ((i * 7919) % 150000), "msg": "x" * 300, "n": i}) for i in range(150000)]
    p = tmp_path / "shuffled.jsonl"
    p.write_text("\n".join(lines) + "\n")
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(f"cwd/{n}" for n in os.listdir(cwd))
            seen.update(os.listdir(tmp_path))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ingest(tmp_path, p, memory_limit="96MB")
    finally:
        done.set()
        watcher.join()
    assert "a.duckdb.tmp" in seen  # it did spill
    assert not any(n.startswith("cwd/") for n in seen)
    assert rows(tmp_path, "SELECT count(*) AS n FROM (SELECT ts, lag(ts) OVER (ORDER BY rowid) AS prev FROM events) WHERE ts < prev")[0]["n"] == 0


# ------------------------------------------------------------------------------------------
# JSON parsed without try() when the sampled lines are all objects


def _json_lines(n: int, bad_at: dict[int, str]) -> str:
    out = []
    for i in range(1, n + 1):
        out.append(bad_at.get(i, json.dumps({"ts": 1769350500 + i, "level": "info", "msg": f"n={i}", "status": i % 5})))
    return "\n".join(out) + "\n"


def _strict_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    real = q.jsonl_events_sql

    def spy(*args: object, **kwargs: object) -> str:
        calls.append(bool(kwargs.get("strict")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(q, "jsonl_events_sql", spy)
    return calls


def test_a_bad_line_the_sample_missed_is_parsed_again_safely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _strict_calls(monkeypatch)
    bad = {3500: "{broken json", 3501: "   ", 3502: "[1, 2]"}
    p = tmp_path / "a.jsonl"
    p.write_text(_json_lines(10_000, bad))
    s = ingest(tmp_path, p)
    assert calls[:2] == [True, False]  # strict first, then again with try()
    assert s.rows_ingested == 9_997 and s.rejects == 3
    got = rows(tmp_path, "SELECT line, reason FROM rejects ORDER BY line")
    assert got == [{"line": 3500, "reason": "invalid JSON"}, {"line": 3501, "reason": "empty line"}, {"line": 3502, "reason": "JSON value is not an object"}]
    assert rows(tmp_path, "SELECT count(*) AS n FROM events WHERE message <> 'n=' || source_line")[0]["n"] == 0


def test_strict_and_safe_parsing_give_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text(_json_lines(3_000, {}) + "\n" + json.dumps({"ts": "2026-01-25T14:15:00Z", "msg": "last", "extra": {"k": [1]}}) + "\n")
    calls = _strict_calls(monkeypatch)
    ingest(tmp_path / "strict", p)
    assert calls == [True]
    real_sample = pipeline._file_keys

    def unclean(*args: object) -> pipeline._JsonSample:
        sample = real_sample(*args)  # type: ignore[arg-type]
        sample.clean = False
        return sample

    monkeypatch.setattr(pipeline, "_file_keys", unclean)
    calls.clear()
    ingest(tmp_path / "safe", p)
    assert calls == [False]
    q_all = "SELECT * EXCLUDE (source_file) FROM events ORDER BY source_line"
    assert rows(tmp_path / "strict", q_all) == rows(tmp_path / "safe", q_all)


def test_a_truncated_last_line_is_seen_by_the_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _strict_calls(monkeypatch)
    p = tmp_path / "a.jsonl"
    p.write_text(_json_lines(20_000, {}) + '{"ts": 1769350500, "msg": "cut sh')
    s = ingest(tmp_path, p)
    assert calls == [False] and s.rejects == 1


def test_each_insert_gets_the_writer_memory_and_the_finish_a_small_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GGEN_INGEST_MEMORY", raising=False)
    seen: list[tuple[str, str]] = []
    load, number = pipeline._load_lines, pipeline._number_lines

    def spy_load(run, *args):  # type: ignore[no-untyped-def]
        seen.append(("insert", run.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]))
        return load(run, *args)

    def spy_number(con, *args):  # type: ignore[no-untyped-def]
        seen.append(("finish", con.execute("SELECT current_setting('memory_limit')").fetchone()[0]))
        return number(con, *args)

    monkeypatch.setattr(pipeline, "_load_lines", spy_load)
    monkeypatch.setattr(pipeline, "_number_lines", spy_number)
    (tmp_path / "a.log").write_text(_log(10))
    (tmp_path / "b.log").write_text(_log(10, start=100))
    ingest(tmp_path, tmp_path / "a.log", tmp_path / "b.log")
    assert [kind for kind, _ in seen] == ["insert", "finish", "insert", "finish"]
    assert seen[0][1] == seen[2][1] != seen[1][1] == seen[3][1]
