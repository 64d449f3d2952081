"""``ggen ingest`` as a user runs it: output, exit codes and errors that name what is wrong."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from console.cli.main import cli
from ingest_support import FIXTURES, write


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_prints_the_accounting(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, out, _ = run("ingest", "--db", str(db), str(FIXTURES / "java_app.log"), str(FIXTURES / "nginx_access.log"))
    assert code == 0
    assert "lines read 13 = ingested 7 + continuation 5 + rejected 1" in out
    assert "java_app.log: log4j, 9 lines -> 4 events" in out
    code, out, _ = run("ingest", "--db", str(db), str(FIXTURES / "java_app.log"))
    assert code == 0 and "skipped, already ingested" in out and "lines read 0 =" in out


def test_json_and_quiet(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, out, _ = run("ingest", "--db", str(db), "--json", str(FIXTURES / "nginx_access.log"))
    assert code == 0
    doc = json.loads(out)
    assert doc["lines_read"] == 4 and doc["rejects"] == 1 and doc["balanced"] is True
    assert doc["files"][0]["format"] == "access_log"
    code, out, _ = run("ingest", "--db", str(tmp_path / "y.duckdb"), "--quiet", str(FIXTURES / "nginx_access.log"))
    assert code == 0 and out.strip().splitlines() == [out.strip()] and out.startswith("lines read 4 = ingested 3")


def test_default_db_is_in_the_data_dir(tmp_path: Path) -> None:
    code, out, _ = run("--data-dir", str(tmp_path / "dd"), "ingest", str(FIXTURES / "nginx_access.log"))
    assert code == 0 and (tmp_path / "dd" / "analyzer.duckdb").exists()


def test_stdin(tmp_path: Path) -> None:
    code, out, _ = run("ingest", "--db", str(tmp_path / "x.duckdb"), "-", input=b'{"ts": 1769350500, "msg": "piped"}\n')
    assert code == 0 and "<stdin>: jsonl" in out and "ingested 1" in out


def test_errors_name_what_is_wrong(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    code, _, err = run("ingest", "--db", db, str(tmp_path / "missing.log"))
    assert code == 4 and err.strip() == f"ggen: {tmp_path / 'missing.log'}: no such file or directory"
    code, _, err = run("ingest", "--db", db, "--format", "xml", str(FIXTURES / "java_app.log"))
    assert code == 2 and "'xml' is not a known format" in err and "syslog_rfc3164" in err
    code, _, err = run("ingest", "--db", db, "--tz", "Mars/Olympus", str(FIXTURES / "java_app.log"))
    assert code == 2 and "'Mars/Olympus' is not a known time zone" in err
    code, _, err = run("ingest", "--db", db)
    assert code == 2 and "give at least one PATH" in err


def test_hostile_text_in_paths_is_escaped(tmp_path: Path) -> None:
    p = write(tmp_path / "evil\x1b[31m.log", "2026-01-25T14:25:00Z ERROR x\n")
    code, out, _ = run("ingest", "--db", str(tmp_path / "x.duckdb"), str(p))
    assert code == 0 and "\x1b" not in out and "\\x1b[31m" in out


def test_list_formats() -> None:
    code, out, _ = run("ingest", "--list-formats")
    assert code == 0 and "syslog_rfc5424" in out and "otlp" in out


def test_help_stays_light() -> None:
    """`ggen ingest --help` must not import DuckDB (the CLI loads heavy modules inside commands)."""
    code = "import sys; from console.cli.main import cli\ntry:\n    cli.main(args=['ingest', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\nprint('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_locked_database_is_a_one_line_error(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "x.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        out = subprocess.run([sys.executable, "-m", "console.cli.main", "ingest", "--db", str(db), str(FIXTURES / "java_app.log")], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        assert out.returncode == 1
        assert out.stderr.startswith(f"ggen: {db}: cannot open the database") and "Traceback" not in out.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert duckdb  # imported to make sure the test environment has it
