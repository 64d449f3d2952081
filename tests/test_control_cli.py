"""Command-line details of the manual commands: confirmation on a terminal, --dry-run, history
read without an engine (`ggen logs tail --db`), and hostile text shown literally."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import duckdb
import orjson

from control_support import GGEN, short_tmp, start_watch


def _on_a_terminal(argv: list[str], env: dict[str, str], answer: bytes, timeout: float = 30) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as stdin/stdout, answer its prompt, return (rc, text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(GGEN + argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    sent = False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not sent and b"Proceed?" in out:
                os.write(master, answer)
                sent = True
        elif p.poll() is not None:
            break
    rc = p.wait(10)
    os.close(master)
    return rc, out.decode(errors="replace")


def test_confirmation_on_a_terminal_and_dry_run():
    w = start_watch(speed=20)
    try:
        env = {k: v for k, v in w.env.items() if k != "GGEN_YES"}
        argv = ["governor", "update", "--account-id", "acct-2002", "--concurrency", "35"]
        rc, text = _on_a_terminal(argv, env, b"n\n")
        assert rc == 5 and "set acct-2002 consumer concurrency 20 -> 35 as oncall-tester. Proceed?" in text and "not confirmed; nothing changed" in text
        assert w.call("governor.status", {"account_id": "acct-2002"})["tenants"][0]["concurrency"] == 20
        rc, text = _on_a_terminal(argv, env, b"y\n")
        assert rc == 0 and "acct-2002.concurrency: 20 -> 35" in text and "receipt urn:uuid:" in text
        assert w.call("governor.status", {"account_id": "acct-2002"})["tenants"][0]["concurrency"] == 35

        p = w.ggen("ggen circuit-breaker open --service upstream --dry-run")
        assert p.stdout.startswith("would open circuit breaker app->upstream") and "nothing applied, nothing recorded" in p.stdout
        assert next(c for c in w.call("circuits.status")["circuits"] if c["name"] == "app->upstream")["state"] == "CLOSED"
        plan = orjson.loads(w.ggen("ggen rate-limit disable --dry-run --json").stdout)
        assert plan["status"] == "plan" and plan["no_change"] == "no request rate limit is in force"

        # The engine's own dry-run mode: the command runs, the engine plans it and records that.
        w.ggen("ggen engine dry-run on")
        p = w.ggen("ggen circuit-breaker open --service upstream")
        assert p.stdout.startswith("dry-run (engine in dry-run mode): planned, not applied")
        assert next(c for c in w.call("circuits.status")["circuits"] if c["name"] == "app->upstream")["state"] == "CLOSED"
        w.ggen("ggen engine dry-run off")
        st = orjson.loads(w.ggen("ggen engine status --json").stdout)
        assert st["dry_run"] is False and st["kill_switch"] is True
    finally:
        assert w.stop() == 0


def _analyzer_db(path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (ts TIMESTAMPTZ, level VARCHAR, raw_level VARCHAR, service VARCHAR, host VARCHAR, message VARCHAR, trace_id VARCHAR, span_id VARCHAR, request_id VARCHAR, attrs JSON, source_file VARCHAR, source_line BIGINT)")
    rows = [
        (0, "INFO", "app", "GET /internal/accounts/7 200", {"status_code": 200}),
        (10, "WARN", "app", "POST /internal/checkout 400 validation_error: field 'account_ref' is required", {"status_code": 400}),
        (20, "ERROR", "app", "POST /internal/checkout 503 circuit open", {"status_code": 503}),
        (30, "ERROR", "api", "POST /v1/actions 502 upstream app returned 5xx \x1b[31mred\x1b[0m [bold]x[/bold]", {"status_code": 502}),
        (400, "ERROR", "app", "POST /internal/checkout 500 NullPointerException", {"status_code": 500}),
    ]
    for i, (dt, lvl, svc, msg, attrs) in enumerate(rows):
        con.execute(
            "INSERT INTO events VALUES (to_timestamp(? ), ?, ?, ?, 'h1', ?, NULL, NULL, NULL, ?, 'f.jsonl', ?)",
            [1_769_350_000 + dt, lvl, lvl, svc, msg, orjson.dumps(attrs).decode(), i + 1],
        )
    con.close()


def test_logs_tail_reads_an_analyzer_database_without_an_engine():
    tmp = short_tmp()
    db = tmp / "incident.duckdb"
    _analyzer_db(db)
    env = dict(os.environ, GGEN_DATA_DIR=str(tmp / "data"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(GGEN + ["logs", "tail", "--db", str(db), *args], env=env, capture_output=True, text=True, timeout=60)

    p = run("--filter", "status_code >= 500", "--json")
    assert p.returncode == 0, p.stderr
    lines = orjson.loads(p.stdout)["lines"]
    assert [ln["fields"]["status_code"] for ln in lines] == [503, 502, 500]
    p = run("--filter", "status_code >= 400 AND status_code < 500", "--json")
    assert [ln["fields"]["status_code"] for ln in orjson.loads(p.stdout)["lines"]] == [400]
    p = run("--filter", "validation_error", "--service", "app", "--json")
    assert len(orjson.loads(p.stdout)["lines"]) == 1
    p = run("--level", "ERROR", "--since", "5m", "--json")  # the last 5 minutes of the recording
    assert [ln["fields"]["status_code"] for ln in orjson.loads(p.stdout)["lines"]] == [500]
    p = run("--limit", "2", "--level", "ERROR")
    assert p.returncode == 0 and len(p.stdout.strip().splitlines()) == 2
    hostile = run("--service", "api")
    assert "\x1b" not in hostile.stdout and "\\x1b[31mred" in hostile.stdout and "[bold]x[/bold]" in hostile.stdout
    bad = run("--filter", "status_code >=")
    assert bad.returncode == 2 and bad.stderr.startswith("ggen: --filter: ") and len(bad.stderr.strip().splitlines()) == 1
    missing = subprocess.run(GGEN + ["logs", "tail", "--db", str(tmp / "nope.duckdb")], env=env, capture_output=True, text=True)
    assert missing.returncode == 4 and "no analyzer database" in missing.stderr
    empty = tmp / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    p = subprocess.run(GGEN + ["logs", "tail", "--db", str(empty)], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "has no events table" in p.stderr


def test_metric_and_fault_catalogues_need_no_engine():
    env = dict(os.environ, GGEN_DATA_DIR=str(short_tmp() / "data"))
    p = subprocess.run(GGEN + ["metrics", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    names = {m["name"] for m in orjson.loads(p.stdout)["metrics"]}
    assert {"pubsub.subscription.lag", "cloudrun.googleapis.com/request_latencies", "queue_depth", "request_latency", "error_rate", "traffic_by_region", "response_size_bytes"} <= names
    p = subprocess.run(GGEN + ["chaos", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    kinds = {f["fault"] for f in orjson.loads(p.stdout)}
    assert {"large_responses", "slow_queries", "region_outage"} <= kinds
