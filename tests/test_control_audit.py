"""What an audit of the manual commands found, each pinned: faults on a target of the wrong kind,
unconfirmed engine switches, a stale status line, empty answers to questions that cannot be
answered, raw messages (quotes, pydantic, None), no command-line acknowledgement, and a watch
source that blamed a file that does not exist."""
from __future__ import annotations

import os
import subprocess
from typing import Any

import orjson
import pytest

from control_support import GGEN, ACTOR, ledger_receipts, short_tmp, start_watch
from engine.clock import VirtualClock
from engine.control.history import MetricsHistory
from engine.control.operations import Operations
from engine.control.protocol import BAD_ARGUMENT, NOT_FOUND, OpError
from engine.core import Engine, SeededIds
from test_control_cli import _on_a_terminal

MIN = 60_000


@pytest.fixture
def ops() -> Operations:
    eng = Engine(clock=VirtualClock(), seed=3, ids=SeededIds(3), kill_switch=True)
    hist = MetricsHistory()

    def advance(ms: int) -> None:
        end = eng.now_ms + ms
        while eng.now_ms < end:
            eng.run_for(eng.tick_ms)
            hist.record(eng)

    o = Operations(eng, history=hist, advance=advance)
    advance(2 * MIN)
    return o


def _err(ops: Operations, op: str, args: dict[str, Any]) -> OpError:
    with pytest.raises(OpError) as ei:
        ops.handle(op, args)
    return ei.value


# ----------------------------------------------------------------------------- 1. fault targets
def test_a_fault_on_a_target_of_the_wrong_kind_is_refused_naming_the_valid_ones(ops):
    e = _err(ops, "chaos.inject", {"fault": "slow_queries", "target": "app"})
    assert e.code == BAD_ARGUMENT and e.arg == "target"
    assert e.message == "slow_queries acts on a database: 'app' is not one (valid targets: database)"
    e = _err(ops, "chaos.inject", {"fault": "external_outage", "target": "app"})
    assert e.arg == "target" and "valid targets: external-api" in e.message
    assert ops.engine.fleet.active_faults() == []  # nothing was injected
    assert ops.handle("chaos.inject", {"fault": "slow_queries", "target": "database"})["target"] == "database"
    assert ops.handle("chaos.inject", {"fault": "slow_queries"})["target"] == "database"  # the default is valid too
    # A kind whose every service acts still takes any service.
    assert ops.handle("chaos.inject", {"fault": "bad_deploy", "target": "upstream"})["target"] == "upstream"


def test_chaos_list_says_which_kind_of_service_a_fault_needs():
    env = dict(os.environ, GGEN_DATA_DIR=str(short_tmp() / "data"))
    rows = {r["fault"]: r for r in orjson.loads(subprocess.run(GGEN + ["chaos", "list", "--json"], env=env, capture_output=True, text=True, timeout=60).stdout)}
    assert rows["slow_queries"]["target_kind"] == "database"
    assert rows["external_outage"]["target_kind"] == "external service"
    assert rows["bad_deploy"]["target_kind"] == "service" and rows["traffic_surge"]["target_kind"] == "queue"


# ----------------------------------------------------------------------------- 4. questions with no answer
def test_a_metric_kept_per_tenant_asked_per_service_is_an_error(ops):
    e = _err(ops, "metrics.get", {"metric": "queue_depth", "service": "app"})
    assert e.code == BAD_ARGUMENT and e.arg == "service"
    assert "queue_depth is kept per tenant queue" in e.message and "'app' consumes none" in e.message and "acct-1001" in e.message
    # The consumer of the queues, or a tenant, still answer.
    assert [r["name"] for r in ops.handle("metrics.get", {"metric": "queue_depth", "service": "acct-1001"})["rows"]] == ["acct-1001"]
    assert len(ops.handle("metrics.get", {"metric": "queue_depth", "service": "governor"})["rows"]) == len(ops.engine.fleet.queues)


@pytest.mark.parametrize(
    "expr, says",
    [
        ("nosuchfield > 3", "unknown field 'nosuchfield'"),
        ("status_code >= abc", "'abc' is not one"),
        ("status_code = abc", "status_code is a number"),
        ("level >= LOUD", "'LOUD': not a level"),
    ],
)
def test_a_log_filter_that_can_match_nothing_is_an_error(ops, expr, says):
    e = _err(ops, "logs.tail", {"filter": expr})
    assert e.code == BAD_ARGUMENT and e.arg == "filter" and says in e.message


def test_good_log_filters_still_pass(ops):
    ops.engine.inject("bad_deploy", "app")
    ops.advance(MIN)
    lines = ops.handle("logs.tail", {"filter": "status_code >= 500 AND level >= WARN AND path ~ checkout"})["lines"]
    assert lines and all(ln["fields"]["status_code"] >= 500 for ln in lines)
    ops.handle("logs.tail", {"filter": "validation_error"})  # a bare word names no field


# ----------------------------------------------------------------------------- 5-7. messages
def test_messages_in_words_people_typed(ops):
    e = _err(ops, "act", {"operation": "mitigation.trigger", "args": {"incident_id": "0000dead", "action": "restart"}})
    assert e.code == NOT_FOUND and e.message == "no incident '0000dead'"
    e = _err(ops, "act", {"operation": "circuit-breaker.close", "args": {"service": "upstream"}, "incident_id": "0000dead"})
    assert e.message == "no incident '0000dead'"
    over = {"operation": "circuit-breaker.override", "args": {"service": "upstream", "state": "CLOSED"}}
    e = _err(ops, "act", dict(over, args=dict(over["args"], duration_ms=0)))
    assert e.arg == "duration_ms" and e.message == "at least 1s (got 0s)"
    e = _err(ops, "act", dict(over, args=dict(over["args"], duration_ms=999 * 86_400_000)))
    assert e.message == "at most 24h (got 999d)"
    on = ops.handle("act", {"operation": "rate-limit.enable", "args": {"account_id": "acct-1001", "max_per_second": 100.0}, "actor": "alice"})
    assert on["detail"] == "tenant acct-1001 rate limit none -> 100 msg/s"
    off = ops.handle("act", {"operation": "rate-limit.disable", "args": {"account_id": "acct-1001"}, "actor": "alice"})
    assert off["detail"] == "tenant acct-1001 rate limit 100 msg/s -> none"
    edge = ops.handle("act", {"operation": "rate-limit.enable", "args": {"max_per_second": 5000.0}, "actor": "alice"})
    assert "None" not in edge["detail"] and "api rate limit none -> 5000 req/s" in edge["detail"]


# ----------------------------------------------------------------------------- against a real engine
def test_switches_confirm_status_is_live_and_ack_works_from_the_command_line():
    w = start_watch(speed=50)
    try:
        no_yes = {k: v for k, v in w.env.items() if k != "GGEN_YES"}
        # 2. the kill switch and dry-run are changes: refused without a terminal and without --yes
        p = w.ggen("ggen engine kill-switch off", expect=5, env=no_yes)
        assert "pass --yes" in p.stderr and w.call("engine.status")["kill_switch"] is True
        rc, text = _on_a_terminal(["engine", "dry-run", "on"], no_yes, b"n\n")
        assert rc == 5 and "turn dry-run ON" in text and "Proceed?" in text and w.call("engine.status")["dry_run"] is False
        rc, text = _on_a_terminal(["engine", "kill-switch", "off"], no_yes, b"y\n")
        assert rc == 0 and "kill switch off" in text and w.call("engine.status")["kill_switch"] is False
        w.ggen("ggen engine dry-run on --yes", env=no_yes)
        w.ggen("ggen engine dry-run off", env=dict(no_yes, GGEN_YES="1"))
        w.ggen("ggen engine kill-switch off", env=no_yes)  # nothing would change: no question
        w.ggen("ggen engine kill-switch on --yes --actor alice")
        w.ggen("ggen engine kill-switch off --yes")

        # 3. status and the second engine's refusal show the live state, not the start's
        w.call("engine.clock", {"speed": 60.0, "actor": ACTOR})
        out = w.ggen("ggen engine status").stdout.splitlines()
        assert "kill switch" not in out[0] and "speed" not in out[0] and f"ggen watch by {ACTOR}" in out[0]
        assert "speed 60" in out[1] and out[2].lstrip().startswith("kill switch off")
        second = subprocess.run(GGEN + ["watch"], env=w.env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 5 and "another engine already runs" in second.stderr
        assert "speed 60x, kill switch off, dry-run off" in second.stderr and "kill switch ON" not in second.stderr
        w.ggen("ggen engine kill-switch on --yes")

        # 1/4/5/6/7 as the CLI prints them: one line, the flag named, exit 2 (or 4)
        for cmd, code, line in [
            ("ggen chaos inject --fault slow_queries --target app", 2, "ggen: --target: slow_queries acts on a database: 'app' is not one (valid targets: database)"),
            ("ggen metrics get --metric queue_depth --service app", 2, "ggen: --service: queue_depth is kept per tenant queue"),
            ("ggen logs tail --filter 'nosuchfield > 3'", 2, "ggen: --filter: unknown field 'nosuchfield'"),
            ("ggen logs tail --filter 'status_code >= abc'", 2, "ggen: --filter: status_code >= 'abc'"),
            ("ggen mitigation trigger --incident-id 0000dead --action restart --yes", 4, "ggen: --incident-id: no incident '0000dead'"),
            ("ggen circuit-breaker override --service upstream --state CLOSED --duration 0s --yes", 2, "ggen: --duration: at least 1s (got 0s)"),
            ("ggen circuit-breaker override --service upstream --state CLOSED --duration 999d --yes", 2, "ggen: --duration: at most 24h (got 999d)"),
        ]:
            p = w.ggen(cmd, expect=code)
            assert p.stderr.startswith(line) and len(p.stderr.strip().splitlines()) == 1, (cmd, p.stderr)
        assert not any(f["kind"] == "slow_queries" for f in w.call("engine.status")["faults"])
        p = w.ggen("ggen rate-limit enable --account-id acct-1001 --max-per-second 100")
        assert "tenant acct-1001 rate limit none -> 100 msg/s" in p.stdout and "None" not in p.stdout
        p = w.ggen("ggen rate-limit disable --account-id acct-1001")
        assert "100 msg/s -> none" in p.stdout and "None" not in p.stdout

        # 8. acknowledge from the command line, as the console's `a` key does
        w.ggen("ggen chaos inject --fault bad_deploy --target app")
        inc = w.incident("error_rate_spike", timeout=30)
        w.ggen("ggen incidents ack --incident-id 0000dead --yes", expect=4)
        p = w.ggen(f"ggen incident ack --incident-id {inc['id'][9:17]}", expect=5, env=no_yes)
        assert "pass --yes" in p.stderr
        p = w.ggen(f"ggen incident ack --incident-id {inc['id'][9:17]} --actor bob --yes")
        assert p.stdout.startswith(f"acknowledged {inc['id']}") and "as bob" in p.stdout
        got = w.call("incident.get", {"incident_id": inc["id"]})
        assert got["acknowledged_by"] == "bob"
        again = orjson.loads(w.ggen(f"ggen incidents ack --incident-id {inc['id']} --json").stdout)
        assert again["changed"] is False and again["acknowledged_by"] == "bob"
    finally:
        assert w.stop() == 0
    acks = [r for r in ledger_receipts(w.data) if r["kind"] == "incident.acknowledged"]
    assert len(acks) == 1 and acks[0]["actor"] == "person:bob" and acks[0]["incident_id"] == inc["id"]
    w.ggen(f"ggen incidents ack --incident-id {inc['id']} --yes", expect=3)


# ----------------------------------------------------------------------------- 9. watch --source file
def test_watch_file_source_without_a_path_says_so():
    data = short_tmp() / "data"
    env = dict(os.environ, GGEN_DATA_DIR=str(data))
    p = subprocess.run(GGEN + ["watch", "--source", "file"], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and p.stderr.strip() == "ggen: --path FILE is needed with --source file (- reads stdin)"
    assert not (data / "engine.sock").exists()
