"""The `ggen incidents` and `ggen keys` commands, driven through click's CliRunner against real
data directories (keys on disk, a SQLite ledger)."""
from __future__ import annotations

import os
import sqlite3

import orjson
import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.clock import WallClock
from engine.events import IncidentEvent
from engine.receipts import ReceiptSink
from engine.receipts.dsse import decode_envelope, encode_envelope
from engine.receipts.keys import KeyStore
from engine.receipts.ledger import Ledger

HOUR = 3_600_000
A = "urn:uuid:aaaaaaaa-1111-4111-8111-111111111111"
B = "urn:uuid:bbbbbbbb-2222-4222-8222-222222222222"
C = "urn:uuid:cccccccc-3333-4333-8333-333333333333"


def run(dd, *args: str):
    return CliRunner().invoke(cli, ["--data-dir", str(dd), *args])


def _ev(iid: str, kind: str, t: int, sev: str, itype: str, summary: str = "", data: dict | None = None) -> IncidentEvent:
    return IncidentEvent(iid, 0, kind, t, t, itype, sev, "governor", "us-central1", "engine", "queue.depth", summary or kind, data or {})


@pytest.fixture
def dd(tmp_path):
    """A data dir made with `ggen keys init`, holding three incidents written by the sink."""
    res = run(tmp_path, "keys", "init", "--origin", "ggen.ledger/cli")
    assert res.exit_code == 0, res.output
    keys = KeyStore.open(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
    sink = ReceiptSink(ledger, keys, lambda t: {"runbook": "d" * 64})
    now = WallClock().now_ms()
    sink.append_events(
        [
            _ev(A, "incident.detected", now - 48 * HOUR, "Sev2", "queue_backlog_overflow"),
            _ev(A, "mitigation.applied", now - 48 * HOUR + 60_000, "Sev2", "queue_backlog_overflow", data={"actions": [{"action": "scale_concurrency", "from": 20, "to": 50}]}),
            _ev(A, "recovery.verified", now - 47 * HOUR, "Sev2", "queue_backlog_overflow", data={"recovered_at_ms": now - 48 * HOUR + 180_000}),
            _ev(B, "incident.detected", now - 2 * HOUR, "Sev1", "region_failover", summary="primary \x1b[2J down [red]x[/red]"),
            _ev(B, "incident.escalated", now - 2 * HOUR + 120_000, "Sev1", "region_failover"),
            _ev(C, "incident.detected", now - HOUR, "Sev3", "latency_spike"),
            _ev(C, "recovery.verified", now - HOUR + 400_000, "Sev3", "latency_spike", data={"recovered_at_ms": now - HOUR + 100_000}),
        ]
    )
    ledger.close()
    return tmp_path


def test_keys_init_show_rotate_export(tmp_path):
    res = run(tmp_path, "keys", "init", "--json")
    assert res.exit_code == 0, res.output
    info = orjson.loads(res.stdout)
    assert info["fingerprint"].startswith("SHA256:") and len(info["key_id"]) == 8
    assert oct(os.stat(tmp_path / "keys").st_mode & 0o777) == "0o700"
    assert run(tmp_path, "keys", "init").exit_code == 5  # refused: keys exist
    res = run(tmp_path, "keys", "show")
    assert res.exit_code == 0 and info["key_id"] in res.output and "current" in res.output and info["fingerprint"] in res.output
    res = run(tmp_path, "keys", "rotate", "--reason", "drill", "--json")
    assert res.exit_code == 0, res.output
    rot = orjson.loads(res.stdout)
    assert rot["old_key_id"] == info["key_id"] and rot["valid_from_seq"] == 1
    shown = orjson.loads(run(tmp_path, "keys", "show", "--json").stdout)
    status = {k["key_id"]: (k["status"], k["valid_from_seq"], k["valid_to_seq"]) for k in shown["keys"]}
    assert status == {info["key_id"]: ("retired", 0, 0), rot["key_id"]: ("current", 1, None)}
    res = run(tmp_path, "keys", "export-public")
    assert res.exit_code == 0 and f"+{info['key_id']}+" in res.stdout and f"+{rot['key_id']}+" in res.stdout
    pub = orjson.loads(run(tmp_path, "keys", "export-public", "--json").stdout)
    assert [(k["key_id"], k["valid_from_seq"], k["valid_to_seq"]) for k in pub["keys"]] == [(info["key_id"], 0, 0), (rot["key_id"], 1, None)]
    assert run(tmp_path, "incidents", "verify", "--all").exit_code == 0


def test_keys_refuse_a_readable_private_key(dd):
    keys = KeyStore.open(dd / "keys")
    path = keys.private_key_path(keys.genesis_key_id)
    os.chmod(path, 0o644)
    res = run(dd, "keys", "rotate")
    assert res.exit_code == 5
    assert res.stderr.startswith("ggen: ") and f"chmod 600 {path}" in res.stderr and res.stderr.count("\n") == 1
    res = run(dd, "keys", "show")
    assert "UNSAFE" in res.output


def test_keys_commands_without_keys(tmp_path):
    res = run(tmp_path, "keys", "show")
    assert res.exit_code == 4 and "ggen keys init" in res.stderr


def test_list_table_filters_and_json(dd):
    res = run(dd, "incidents", "list")
    assert res.exit_code == 0, res.output
    assert "3 incident(s)" in res.output and "region_failover" in res.output
    # hostile text is shown, not executed: no raw escape codes, markup kept literally
    assert "\x1b" not in res.output
    rows = orjson.loads(run(dd, "incidents", "list", "--json").stdout)
    assert [r["incident_id"] for r in rows] == [C, B, A]  # newest first
    by = {r["incident_id"]: r for r in rows}
    assert by[A]["status"] == "resolved" and by[A]["mttr_ms"] == 180_000
    assert by[B]["status"] == "escalated" and by[B]["summary"] == "primary \x1b[2J down [red]x[/red]"
    assert by[C]["mttr_ms"] == 100_000
    ids = lambda *a: [r["incident_id"] for r in orjson.loads(run(dd, "incidents", "list", "--json", *a).stdout)]  # noqa: E731
    assert ids("--since", "24h") == [C, B]
    assert ids("--since", "30m") == [B]  # unresolved incidents always show
    assert set(ids("--since", "7d")) == {A, B, C}
    assert ids("--severity", "sev1") == [B]
    assert ids("--status", "resolved") == [C, A]
    assert ids("--status", "open") == []
    assert ids("--type", "latency_spike") == [C]
    assert ids("--since", "2020-01-01") == [C, B, A]
    assert ids("--since", "2999-01-01T00:00:00Z") == [B]


@pytest.mark.parametrize("bad", ["bogus", "-5m", "24", "7x", ""])
def test_list_bad_since_values(dd, bad):
    res = run(dd, "incidents", "list", "--since", bad)
    if bad == "24":
        # a bare number is epoch seconds (TIME_REF's rule): valid, and selects everything
        assert res.exit_code == 0
        return
    assert res.exit_code == 2
    assert "--since" in res.output and "not a" in res.output


def test_the_incident_alias(dd):
    res = run(dd, "incident", "list", "--json")
    assert res.exit_code == 0 and len(orjson.loads(res.stdout)) == 3
    assert run(dd, "incident", "verify", "--receipt-id", A).exit_code == 0


def test_list_on_an_empty_data_dir(tmp_path):
    res = run(tmp_path, "incidents", "list")
    assert res.exit_code == 0 and "no incidents" in res.output
    assert orjson.loads(run(tmp_path, "incidents", "list", "--json").stdout) == []


def test_show_by_prefix_with_verification_state(dd):
    res = run(dd, "incidents", "show", "aaaaaaaa")
    assert res.exit_code == 0, res.output
    for word in ("queue_backlog_overflow", "resolved", "3m00s", "mitigation.applied", "recovery.verified"):
        assert word in res.output
    assert res.output.count(" ok ") + res.output.count(" ok\n") + res.output.count("ok ") >= 3
    js = orjson.loads(run(dd, "incidents", "show", A.removeprefix("urn:uuid:"), "--json").stdout)
    assert js["incident"]["incident_id"] == A and len(js["receipts"]) == 3
    assert all(r["verified"] for r in js["receipts"]) and js["verification"]["ok"]
    assert js["receipts"][1]["payload"]["actions"][0]["action"] == "scale_concurrency"
    # a follow-up receipt's id leads to its incident
    follow = js["receipts"][1]["receipt_id"]
    assert orjson.loads(run(dd, "incidents", "show", follow, "--json").stdout)["incident"]["incident_id"] == A
    hostile = run(dd, "incidents", "show", B)
    assert hostile.exit_code == 0 and "\x1b" not in hostile.output and "[red]x[/red]" in hostile.output


def test_show_errors(dd):
    assert run(dd, "incidents", "show", "dddddddd").exit_code == 4
    res = run(dd, "incidents", "show", "abc")
    assert res.exit_code == 4 and "at least 8 hex digits" in res.stderr


def test_show_marks_a_tampered_receipt(dd):
    with sqlite3.connect(dd / "ledger.sqlite") as db:
        raw = bytes(db.execute("SELECT envelope FROM receipts WHERE seq = 1").fetchone()[0])
        env = decode_envelope(raw)
        bad = encode_envelope(env.payload_type, env.payload.replace(b'"to":50', b'"to":99'), env.keyid, env.sig)
        db.execute("UPDATE receipts SET envelope = ? WHERE seq = 1", (bad,))
    js = orjson.loads(run(dd, "incidents", "show", A, "--json").stdout)
    assert [r["verified"] for r in js["receipts"]] == [True, False, False]
    assert js["receipts"][1]["failures"][0]["kind"] == "signature-invalid"
    # the next receipt is intact, but its links to the edited one no longer hold
    assert {f["kind"] for f in js["receipts"][2]["failures"]} == {"prev-chain", "parent-digest"}
    assert "FAILED signature-invalid" in run(dd, "incidents", "show", A).output


def test_verify_modes_and_exit_codes(dd):
    res = run(dd, "incidents", "verify", "--all")
    assert res.exit_code == 0 and "verified ledger: 7 receipt(s)" in res.output
    assert run(dd, "incidents", "verify", "--incident-id", "bbbbbbbb").exit_code == 0
    assert run(dd, "incidents", "verify", "--receipt-id", C).exit_code == 0
    assert run(dd, "incidents", "verify", "--receipt-id", "urn:uuid:cccccccc-3333-4333-8333-333333333333").exit_code == 0
    assert run(dd, "incidents", "verify").exit_code == 2
    assert run(dd, "incidents", "verify", "--all", "--receipt-id", A).exit_code == 2
    assert run(dd, "incidents", "verify", "--receipt-id", "eeeeeeee").exit_code == 4
    js = orjson.loads(run(dd, "incidents", "verify", "--all", "--json").stdout)
    assert js["ok"] and js["checked"] == 7 and js["checkpoint_size"] == 7
    # tamper: one-line reason on stderr and the documented exit code
    with sqlite3.connect(dd / "ledger.sqlite") as db:
        raw = bytes(db.execute("SELECT envelope FROM receipts WHERE seq = 3").fetchone()[0])
        env = decode_envelope(raw)
        db.execute("UPDATE receipts SET envelope = ? WHERE seq = 3", (encode_envelope(env.payload_type, env.payload, "00000000", env.sig),))
    res = run(dd, "incidents", "verify", "--receipt-id", B)
    assert res.exit_code == 12
    assert res.stderr.count("\n") == 1 and "[key-unknown] seq 3" in res.stderr
    res = run(dd, "incidents", "verify", "--all", "--json")
    assert res.exit_code == 12 and orjson.loads(res.stdout)["failures"][0]["code"] == 12
    assert run(dd, "incidents", "verify", "--receipt-id", C).exit_code == 0  # other receipts still verify alone


def test_verify_help_lists_every_exit_code(dd):
    from engine.receipts.verify import FailureKind

    res = run(dd, "incidents", "verify", "--help")
    assert res.exit_code == 0
    for k in FailureKind:
        assert f"{k.code}" in res.output and k.slug in res.output


def test_pinned_checkpoint_via_the_cli(dd):
    keys = KeyStore.open(dd / "keys")
    sink = ReceiptSink(Ledger.open(dd / "ledger.sqlite", keys), keys)
    sink.append_receipt("certificate.issued", evidence={"n": 1})
    sink.append_receipt("certificate.issued", evidence={"n": 2})
    res = run(dd, "incidents", "checkpoint", "--pin")
    assert res.exit_code == 0 and res.stdout.startswith("ggen.ledger/cli\n9\n")
    assert (dd / "trusted-checkpoint").read_bytes() == res.stdout_bytes
    res = run(dd, "incidents", "verify", "--all")
    assert res.exit_code == 0 and "pinned checkpoint of size 9" in res.output
    # drop the last receipt and its checkpoint: the ledger alone looks fine, the pin does not
    with sqlite3.connect(dd / "ledger.sqlite") as db:
        db.execute("DELETE FROM receipts WHERE seq = 8")
        db.execute("DELETE FROM checkpoints WHERE size = 9")
    os.rename(dd / "trusted-checkpoint", dd / "pin.note")
    assert run(dd, "incidents", "verify", "--all").exit_code == 0
    os.rename(dd / "pin.note", dd / "trusted-checkpoint")
    res = run(dd, "incidents", "verify", "--all")
    assert res.exit_code == 21 and "truncated" in res.stderr


def test_verify_without_a_ledger(tmp_path):
    res = run(tmp_path, "incidents", "verify", "--all")
    assert res.exit_code == 28 and "no ledger" in res.stderr


def test_export_to_stdout_and_file(dd, tmp_path):
    res = run(dd, "incidents", "export", "--format", "json", "--since", "7d")
    assert res.exit_code == 0
    doc = orjson.loads(res.stdout)
    assert doc["count"] == 7 and doc["format"] == "ggen.receipts.export/v1"
    out = tmp_path / "x.jsonl"
    res = run(dd, "incidents", "export", "--format", "jsonl", "--since", "24h", "--output", str(out))
    assert res.exit_code == 0 and "exported 4 receipt(s)" in res.stderr
    assert run(dd, "incidents", "verify", "--export", str(out)).exit_code == 0
    res = run(dd, "incidents", "export", "--format", "csv")
    assert res.exit_code == 0 and res.stdout.startswith("# ggen receipts export (csv")
    assert run(dd, "incidents", "export", "--since", "yesterday").exit_code == 2
    assert run(dd, "incidents", "export", "--format", "xml").exit_code == 2


def test_other_modules_can_add_incidents_subcommands(dd, monkeypatch):
    import console.cli.incidents as mod

    monkeypatch.setitem(mod.EXTRA_COMMANDS, "timeline-demo", "tests.test_receipts_cli:_demo_command")
    monkeypatch.syspath_prepend(str(os.path.dirname(os.path.dirname(__file__))))
    res = run(dd, "incidents", "--help")
    assert "timeline-demo" in res.output
    res = run(dd, "incidents", "timeline-demo")
    assert res.exit_code == 0 and res.output == "demo ran\n"


import click  # noqa: E402


@click.command()
def _demo_command() -> None:
    """A sub-command contributed from another module."""
    click.echo("demo ran")


def test_damaged_ledger_gives_one_line_errors(dd):
    with sqlite3.connect(dd / "ledger.sqlite") as db:
        db.execute("UPDATE receipts SET envelope = ? WHERE seq = 2", (b"{not json",))
    res = run(dd, "incidents", "export", "--format", "json")
    assert res.exit_code == 1 and "receipt seq 2 is damaged" in res.stderr and res.stderr.count("\n") == 1
    res = run(dd, "incidents", "verify", "--all")
    assert res.exit_code == 10 and "[envelope-malformed] seq 2" in res.stderr
    assert run(dd, "incidents", "list", "--json").exit_code == 0  # history still lists what it can
    assert run(dd, "incidents", "show", A, "--json").exit_code == 0


def test_a_file_that_is_not_a_ledger(tmp_path):
    (tmp_path / "ledger.sqlite").write_bytes(b"garbage" * 1000)
    for args in (("incidents", "list"), ("incidents", "verify", "--all"), ("incidents", "show", A)):
        res = run(tmp_path, *args)
        assert res.exit_code == 28 and res.stderr.startswith("ggen: ") and res.stderr.count("\n") == 1, (args, res.output)


def test_list_says_when_filters_leave_nothing(dd):
    res = run(dd, "incidents", "list", "--severity", "Sev4", "--type", "region_failover")
    assert res.exit_code == 0
    assert "none of the 3 incident(s) in the ledger match severity Sev4, type region_failover" in " ".join(res.output.split())
