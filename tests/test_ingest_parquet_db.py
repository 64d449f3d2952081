"""A Parquet dataset written by ``ggen ingest --parquet-out DIR`` is read by ``--db DIR`` of
``ggen logs tail`` and ``ggen timeline`` (read-only), with the same answers as the database."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from analyzer.ingest import is_parquet_dataset
from console.cli.main import cli

SET = Path(__file__).parent.parent / "sample_logs" / "errors-bad-deploy"
WINDOW = ["--from", "2026-01-25T14:00:00Z", "--to", "2026-01-25T14:22:00Z"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_db_accepts_a_parquet_dataset(tmp_path: Path) -> None:
    db, pq = tmp_path / "a.duckdb", tmp_path / "pq"
    code, _, _ = run("ingest", "--db", str(db), "--parquet-out", str(pq), "-q", str(SET / "logs"), str(SET / "metrics"), str(SET / "traces"))
    assert code == 0 and is_parquet_dataset(pq) and not is_parquet_dataset(tmp_path)
    tail = ["logs", "tail", "--level", "ERROR", "--limit", "5", "--json"]
    code, from_db, err = run(*tail, "--db", str(db))
    assert code == 0, err
    code, from_pq, err = run(*tail, "--db", str(pq))
    assert code == 0, err
    lines = json.loads(from_pq)["lines"]
    assert lines == json.loads(from_db)["lines"] and len(lines) == 5
    code, tl_db, err = run("timeline", "--db", str(db), *WINDOW, "--json")
    assert code == 0, err
    code, tl_pq, err = run("timeline", "--db", str(pq), *WINDOW, "--json")
    assert code == 0, err
    a, b = json.loads(tl_db), json.loads(tl_pq)
    assert a["phases"] and a["phases"] == b["phases"]


def test_a_plain_directory_is_still_refused(tmp_path: Path) -> None:
    code, _, err = run("logs", "tail", "--db", str(tmp_path))
    assert code != 0 and "not a Parquet dataset" in err
    code, _, err = run("timeline", "--db", str(tmp_path), *WINDOW)
    assert code != 0 and "is a directory" in err
