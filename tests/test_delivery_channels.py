"""Delivery channels on their own: real programs for the command channel, the Slack payload, the
config section, and the wiring into a live engine."""
from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.delivery import attach_delivery, load_delivery_config, read_records
from engine.delivery.channels import slack_payload
from engine.delivery.config import DeliveryConfig
from engine.delivery.service import DeliveryService
from engine.escalation import Notification, Outbox
from engine.policy.loader import PolicyError
from ops_support import start_hook


def script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def note(i: int = 1, **kw) -> Notification:
    base = dict(id=f"urn:uuid:00000000-0000-4000-8000-{i:012d}", at_ms=1_769_349_600_000, channel="pager", recipient_role="primary",
                recipient="Ana Souza", incident_id="urn:uuid:11111111-1111-4111-8111-111111111111", severity="Sev1", text="Sev1 breaker open", kind="page", step=0)
    base.update(kw)
    return Notification(**base)


def command_service(tmp_path: Path, argv: list[str], timeout_ms: int = 3000, attempts: int = 2) -> tuple[DeliveryService, Outbox]:
    cfg = DeliveryConfig.model_validate({
        "retry": {"attempts": attempts, "backoff_initial_ms": 10, "jitter_pct": 0},
        "channels": [{"type": "command", "name": "notify", "command": argv, "timeout_ms": timeout_ms}],
    })
    box = Outbox()
    svc = DeliveryService(box, cfg, records=tmp_path / "delivery.jsonl")
    svc.start()
    return svc, box


def test_command_success_gets_the_notification_on_stdin_and_in_its_environment(tmp_path):
    out = tmp_path / "got.json"
    prog = script(tmp_path, "ok.py", f"""
        import json, os, sys
        doc = json.load(sys.stdin)
        doc["env"] = {{k: v for k, v in os.environ.items() if k.startswith("GGEN_")}}
        open({str(out)!r}, "w").write(json.dumps(doc))
        print("sent")
    """)
    svc, box = command_service(tmp_path, [prog])
    box.put(note())
    assert svc.wait_idle(10)
    svc.stop()
    doc = json.loads(out.read_text())
    assert doc["notification"]["recipient"] == "Ana Souza" and doc["notification"]["text"] == "Sev1 breaker open"
    assert doc["env"]["GGEN_SEVERITY"] == "Sev1" and doc["env"]["GGEN_RECIPIENT_ROLE"] == "primary" and doc["env"]["GGEN_ATTEMPT"] == "1"
    [rec] = read_records(tmp_path / "delivery.jsonl")
    assert rec["outcome"] == "delivered" and rec["status"] == 0 and rec["output"].strip() == "sent"


def test_command_failure_is_retried_then_recorded_as_failed(tmp_path):
    prog = script(tmp_path, "fail.py", """
        import sys
        sys.stdin.read()
        print("smtp relay refused", file=sys.stderr)
        sys.exit(3)
    """)
    svc, box = command_service(tmp_path, [prog], attempts=3)
    box.put(note())
    assert svc.wait_idle(10)
    svc.stop()
    recs = read_records(tmp_path / "delivery.jsonl")
    assert [(r["attempt"], r["outcome"], r["status"]) for r in recs[:3]] == [(1, "retry", 3), (2, "retry", 3), (3, "failed", 3)]
    assert "exit status 3" in recs[2]["error"] and "smtp relay refused" in recs[2]["output"]
    # no engine to escalate through: that is recorded too, never silent
    assert recs[3]["outcome"] == "not_escalated"
    assert len(svc.failures) == 1


def test_command_hanging_past_its_timeout_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "pids"
    prog = script(tmp_path, "hang.py", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """)
    svc, box = command_service(tmp_path, [prog], timeout_ms=700, attempts=1)
    t0 = time.monotonic()
    box.put(note())
    assert svc.wait_idle(20)
    elapsed = time.monotonic() - t0
    svc.stop()
    recs = read_records(tmp_path / "delivery.jsonl")
    assert recs[0]["outcome"] == "failed" and "still running after 700 ms: killed" in recs[0]["error"]
    assert 0.6 < elapsed < 10
    for pid in map(int, pidfile.read_text().split()):
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:  # a killed grandchild may linger as a zombie until reaped by init
                if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    break
            except FileNotFoundError:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"process {pid} survived the timeout")


def test_command_garbage_output_is_kept_escaped_and_bounded(tmp_path):
    prog = script(tmp_path, "junk.py", """
        import sys
        sys.stdin.buffer.read()
        sys.stdout.buffer.write(b"\\x1b[31mred\\x1b[0m \\xff\\xfe\\x00 bell\\x07 " + b"A" * 10000)
        sys.stderr.buffer.write(b"\\x9b2J")
    """)
    svc, box = command_service(tmp_path, [prog])
    box.put(note())
    assert svc.wait_idle(10)
    svc.stop()
    [rec] = read_records(tmp_path / "delivery.jsonl")
    assert rec["outcome"] == "delivered"
    out = rec["output"]
    assert "\x1b" not in out and "\x07" not in out and "\x00" not in out and "\x9b" not in out
    assert "\\x1b[31mred" in out and "\\x07" in out and "bytes in all" in out
    assert len(out) < 3000


def test_missing_program_fails_at_once_without_retries(tmp_path):
    svc, box = command_service(tmp_path, [str(tmp_path / "no-such-program")], attempts=4)
    box.put(note())
    assert svc.wait_idle(10)
    svc.stop()
    recs = read_records(tmp_path / "delivery.jsonl")
    assert recs[0]["attempt"] == 1 and recs[0]["outcome"] == "failed" and "program not found" in recs[0]["error"]


def test_slack_payload_escapes_markup_and_mentions():
    p = slack_payload(note(text="<!channel> <script>alert(1)</script> & co").to_dict(), {"handle": "@ana"})
    assert p["text"] == "Sev1 page for Ana Souza (@ana): &lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    block = p["blocks"][0]["text"]["text"]
    assert "<" not in block and "&lt;script&gt;" in block and "Ana Souza (@ana)" in block


def test_slack_format_over_http_and_filters(tmp_path):
    hook = start_hook()
    try:
        cfg = DeliveryConfig.model_validate({"channels": [
            {"type": "webhook", "name": "chat", "url": hook.url, "format": "slack", "channels": ["#incidents"]},
            {"type": "console", "kinds": ["page"], "severities": ["Sev1"]},
        ]})
        box = Outbox()
        svc = DeliveryService(box, cfg)
        seen = []
        svc.feed.subscribe(seen.append)
        svc.start()
        box.put(note(1, channel="#incidents", recipient_role="channel", recipient="#incidents", kind="info"))
        box.put(note(2))
        box.put(note(3, severity="Sev2"))
        assert svc.wait_idle(10)
        svc.stop()
    finally:
        hook.close()
    assert len(hook.received) == 1 and set(hook.received[0].json()) == {"text", "blocks"}
    assert [s["id"] for s in seen] == [note(2).id]


def test_config_section_errors_name_file_and_field(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[sources]\nwhatever = 1\n\n[delivery]\n[[delivery.channels]]\ntype = "webhook"\nname = "x"\nurl = "ftp://example.org"\n')
    with pytest.raises(PolicyError) as ei:
        load_delivery_config(p)
    assert ei.value.field == "delivery.channels.0.webhook.url" and "not an http:// or https:// URL" in str(ei.value)
    p.write_text('[delivery]\n[[delivery.channels]]\ntype = "pigeon"\nname = "x"\n')
    with pytest.raises(PolicyError) as ei:
        load_delivery_config(p)
    assert "delivery.channels.0" in str(ei.value) and str(p) in str(ei.value)
    p.write_text('[delivery]\n[[delivery.channels]]\ntype = "console"\n[[delivery.channels]]\ntype = "console"\n')
    with pytest.raises(PolicyError, match="used twice"):
        load_delivery_config(p)
    p.write_text('[delivery.retry]\nattempts = 0\n')
    with pytest.raises(PolicyError) as ei:
        load_delivery_config(p)
    assert ei.value.field == "delivery.retry.attempts"
    p.write_text('[sources]\nx = 1\n')  # another part's section only: no channels, no error
    assert load_delivery_config(p).channels == []
    assert load_delivery_config(tmp_path / "absent.toml").channels == []


def test_live_engine_delivers_pages_to_the_roster_through_config_toml(tmp_path):
    from engine.datadir import DataDir
    from engine.live import LiveEngine, wait_until
    from engine.oncall import attach_roster
    from engine.oncall.roster import example_roster_path

    hook = start_hook()
    try:
        dd = DataDir(tmp_path / "dd").ensure()
        dd.roster_path.write_text(example_roster_path().read_text())
        dd.config_path.write_text(f'[delivery]\n[[delivery.channels]]\ntype = "webhook"\nname = "pager"\nurl = "{hook.url}"\nchannels = ["pager"]\n')
        live = LiveEngine(dd, speed=60, kill_switch=True)
        roster = attach_roster(live)
        svc = attach_delivery(live)
        with live:
            live.engine.inject("dependency_outage", "action-handler")
            assert wait_until(lambda: len(hook.received) >= 1, 20), live.engine.notices
        body = hook.received[0].json()
        at = body["notification"]["at_ms"]
        assert body["notification"]["recipient"] == roster.who("primary", at)
        assert body["contact"]["name"] == body["notification"]["recipient"]
        recs = read_records(dd.root / "delivery.jsonl")
        assert any(r["outcome"] == "delivered" and r["notification_id"] == body["notification"]["id"] for r in recs)
        assert svc in live.services
    finally:
        hook.close()
