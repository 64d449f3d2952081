"""What ``ggen ingest`` tells about bad input: each rejected line named as FILE:LINE: reason (in
the summary, in --json and from ``--rejects``), in the project's words, escaped for a terminal."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from console.cli.main import cli
from ingest_support import write

GOOD = '{"ts":"2026-01-01T00:00:%02dZ","level":"info","msg":"ok %d"}\n'


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _mixed(tmp_path: Path, bad: int = 2) -> Path:
    lines = [GOOD % (i, i) for i in range(40)]
    for i in range(bad):
        lines.insert(1 + i, "{broken \x1b[31mred\n" if i == 0 else f"not json {i}\n")
    return write(tmp_path / "mixed.jsonl", "".join(lines))


def test_summary_names_each_rejected_line(tmp_path: Path) -> None:
    src = _mixed(tmp_path)
    db = tmp_path / "x.duckdb"
    code, out, _ = run("ingest", "--db", str(db), str(src))
    assert code == 0
    name = str(src.resolve())
    assert f"  {name}:2: invalid JSON: {{broken \\x1b[31mred" in out
    assert f"  {name}:3: invalid JSON: not json 1" in out
    assert "\x1b" not in out
    assert f"ggen ingest --rejects --db {db}" in out
    assert "more rejected" not in out


def test_summary_counts_the_rest_and_says_how_to_list_them(tmp_path: Path) -> None:
    src = _mixed(tmp_path, bad=9)
    db = tmp_path / "x.duckdb"
    code, out, _ = run("ingest", "--db", str(db), str(src))
    assert code == 0
    name = str(src.resolve())
    assert out.count(f"  {name}:") == 5
    assert f"... and 4 more rejected; list them all: ggen ingest --rejects --db {db} --file {name}" in out


def test_json_has_the_first_rejects(tmp_path: Path) -> None:
    src = _mixed(tmp_path)
    code, out, _ = run("ingest", "--db", str(tmp_path / "x.duckdb"), "--json", str(src))
    assert code == 0
    f = json.loads(out)["files"][0]
    assert [(r["line"], r["reason"]) for r in f["first_rejects"]] == [(2, "invalid JSON"), (3, "invalid JSON")]
    assert f["first_rejects"][0]["raw"] == "{broken \x1b[31mred"


def test_rejects_lists_them_all(tmp_path: Path) -> None:
    src = _mixed(tmp_path, bad=9)
    other = write(tmp_path / "t.log", "no timestamp here\n2026-01-25T14:00:00Z INFO fine\n")
    db = tmp_path / "x.duckdb"
    assert run("ingest", "--db", str(db), "--quiet", str(src), str(other))[0] == 0
    code, out, err = run("ingest", "--rejects", "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith(f"{other.resolve()}:1: ")
    assert "10 rejected line(s)" in err
    code, out, _ = run("ingest", "--rejects", "--db", str(db), "--file", str(src), "--limit", "3", "--json")
    doc = json.loads(out)
    assert doc["total"] == 9 and [r["line"] for r in doc["rejects"]] == [2, 3, 4]
    assert doc["rejects"][0]["file"] == str(src.resolve())


def test_rejects_errors(tmp_path: Path) -> None:
    code, _, err = run("ingest", "--rejects", "--db", str(tmp_path / "none.duckdb"))
    assert code == 4 and "none.duckdb: no such analyzer database" in err
    code, _, err = run("ingest", "--rejects", "--db", str(tmp_path / "x.duckdb"), "some.log")
    assert code == 2 and "give no PATH" in err
    code, _, err = run("ingest", "--file", "a.log", "some.log")
    assert code == 2 and "go with --rejects" in err


def test_slow_path_is_said_in_our_words(tmp_path: Path) -> None:
    src = write(tmp_path / "bad.jsonl", (GOOD % (0, 0)).encode() + b'{"ts":"2026-01-01T00:00:01Z","msg":"\xff\xfe"}\n')
    code, out, _ = run("ingest", "--db", str(tmp_path / "x.duckdb"), str(src))
    assert code == 0
    assert "CSV" not in out and "Invalid Input Error" not in out
    assert "read again line by line (invalid UTF-8 in a line)" in out
    assert f"{src.resolve()}:2: invalid UTF-8 at byte " in out
