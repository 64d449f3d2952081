"""The command actuator runs real programs: the action arrives as JSON on stdin; a script that
succeeds is recorded with its exit code and output; one that fails, hangs past its timeout (its
whole process group is killed) or prints garbage makes the step fail and the incident escalate,
with the reason and the escaped output in the signed receipts."""
from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from engine.actuators import ActuatorRouter, CommandActuator
from engine.clock import VirtualClock
from engine.core import Engine
from engine.datadir import DataDir
from engine.mitigate.actuator import Action
from sources_support import ggen


def script(tmp: Path, name: str, body: str) -> Path:
    p = tmp / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def engine_with(tmp: Path, actuator: CommandActuator) -> tuple[Engine, DataDir, object]:
    from engine.receipts import KeyStore, Ledger, ReceiptSink

    dd = DataDir(tmp / "data").ensure()
    eng = Engine(clock=VirtualClock(), seed=4, actuator=ActuatorRouter({actuator.name: actuator}, {"*": actuator.name}))
    keys = KeyStore.open_or_init(dd.keys_dir, now_ms=eng.now_ms)
    ledger = Ledger.open(dd.ledger_path, keys)
    eng.subscribe(ReceiptSink(ledger, keys, eng.policy.policy_hashes, eng.clock))
    return eng, dd, ledger


def receipts(ledger, kind: str) -> list[dict]:
    return [r.payload() for r in ledger.iter_receipts() if r.payload()["kind"] == kind]


def run_error_spike(eng: Engine, until) -> None:
    eng.run_for(60_000)
    eng.inject("bad_deploy", "app")
    assert eng.run_until(until, 300_000)


def test_script_gets_the_action_on_stdin_and_its_answer_is_the_receipt(tmp_path):
    seen = tmp_path / "stdin.json"
    ok = script(tmp_path, "ok.sh", f'cat > "{seen}"\necho "GGEN_ACTION=$GGEN_ACTION" >&2\n' + "printf '%s' '{\"ok\": true, \"detail\": \"throttled at the edge\", \"changes\": {\"limit_rps\": 100}}'\n")
    act = CommandActuator("edge", [str(ok)], timeout_ms=5000, enabled=True)
    eng, dd, ledger = engine_with(tmp_path, act)
    run_error_spike(eng, lambda e: any(x.kind == "mitigation.applied" for i in e.incidents.values() for x in i.events))
    doc = json.loads(seen.read_text())
    inc = next(iter(eng.incidents.values()))
    assert doc["schema"] == "ggen.action/1" and doc["actuator"] == "edge"
    assert doc["action"]["name"] == "throttle" and doc["action"]["target"] == "app" and doc["action"]["incident_id"] == inc.id
    applied = receipts(ledger, "mitigation.applied")[0]
    out = applied["evidence"]["outcome"]
    assert (out["exit_code"], out["timed_out"], out["type"], out["actuator"]) == (0, False, "command", "edge")
    assert out["stderr"].strip() == "GGEN_ACTION=throttle"
    assert applied["evidence"]["detail"] == "throttled at the edge"
    assert applied["actions"][0]["limit_rps"] == 100
    assert not inc.escalated or "mitigation failed" not in (inc.escalation_reason or "")
    ledger.close()
    done = ggen("--data-dir", str(dd.root), "incidents", "verify", "--all")
    assert done.returncode == 0, done.stdout + done.stderr


CASES = {
    "fails": ("echo 'quota API said no' >&2\nexit 3\n", 5000, "failed (exit status 3): quota API said no"),
    "hangs": ('sleep 30 &\necho $! > "{pid}"\nsleep 30\n', 300, "timed out after 300 ms and was killed"),
    "garbage": ("printf '\\033[31mNOT JSON\\000\\377 done'\n", 5000, "output is not JSON"),
    "not_an_object": ("echo '[1, 2, 3]'\n", 5000, "is JSON but not an object"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_failing_script_escalates_with_the_reason_in_the_receipt(tmp_path, case):
    body, timeout_ms, reason = CASES[case]
    pid_file = tmp_path / "child.pid"
    act = CommandActuator("ops", [str(script(tmp_path, f"{case}.sh", body.replace("{pid}", str(pid_file))))], timeout_ms=timeout_ms, enabled=True)
    eng, dd, ledger = engine_with(tmp_path, act)
    t0 = time.monotonic()
    run_error_spike(eng, lambda e: any(i.escalated for i in e.incidents.values()))
    assert time.monotonic() - t0 < 10
    inc = next(iter(eng.incidents.values()))
    assert reason in inc.escalation_reason, inc.escalation_reason
    failed = receipts(ledger, "mitigation.failed")[0]
    assert reason in failed["evidence"]["detail"]
    out = failed["evidence"]["outcome"]
    escalated = receipts(ledger, "incident.escalated")[0]
    assert reason in escalated["evidence"]["reason"]
    if case == "hangs":
        assert out["timed_out"] is True and out["exit_code"] is None and out["signal"] == "SIGKILL"
        child = int(pid_file.read_text())
        time.sleep(0.1)
        assert not _alive(child), "the script's background child survived the timeout"
    elif case == "fails":
        assert out["exit_code"] == 3 and out["stderr"].strip() == "quota API said no"
    elif case == "garbage":
        assert out["exit_code"] == 0
        assert out["stdout"] == "\\x1b[31mNOT JSON\\x00\ufffd done"  # escaped, never raw escape codes
    ledger.close()
    done = ggen("--data-dir", str(dd.root), "incidents", "verify", "--all")
    assert done.returncode == 0, done.stdout + done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_disabled_actuator_is_a_dry_run_that_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    act = CommandActuator("ops", [str(script(tmp_path, "s.sh", f'touch "{marker}"\n'))], enabled=False)
    res = act.apply(Action("throttle", "app", {}, ("us-central1",), "runbook:x@1", None, "test"), 0)
    assert not res.ok and res.outcome["dry_run"] is True and "not enabled" in res.detail
    assert not marker.exists() and act.calls == 0


def test_missing_program_and_huge_output_are_clean_failures(tmp_path):
    a = Action("throttle", "app")
    res = CommandActuator("ops", [str(tmp_path / "nope")], enabled=True).apply(a, 0)
    assert not res.ok and "cannot run" in res.detail and res.outcome["exit_code"] is None
    big = script(tmp_path, "big.sh", "head -c 300000 /dev/zero | tr '\\0' 'x'\n")
    res = CommandActuator("ops", [str(big)], enabled=True, max_output_bytes=1024).apply(a, 0)
    assert not res.ok and "longer than 1024 bytes" in res.detail
    assert len(res.outcome["stdout"]) <= 2000 and res.outcome["stdout_truncated"]


def test_killed_by_a_signal_and_reported_deferral(tmp_path):
    a = Action("scale_concurrency", "acct-1001")
    res = CommandActuator("ops", [str(script(tmp_path, "k.sh", "kill -TERM $$\n"))], enabled=True).apply(a, 0)
    assert not res.ok and "killed by SIGTERM" in res.detail and res.outcome["signal"] == "SIGTERM"
    wait = script(tmp_path, "w.sh", "echo '{\"ok\": false, \"deferred\": true, \"detail\": \"cooldown 40 s\"}'\n")
    res = CommandActuator("ops", [str(wait)], enabled=True).apply(a, 0)
    assert not res.ok and res.deferred and "cooldown 40 s" in res.detail
