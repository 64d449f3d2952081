"""Exports: verified elsewhere with only the public key file; torn, edited, trimmed or re-proved
exports are rejected; consistency from the previous export and from a pinned checkpoint."""
from __future__ import annotations

import base64
import csv
import io

import orjson
import pytest

from engine.receipts import ReceiptSink
from engine.receipts.export import CSV_HEADER_LINE, build_export, render_export, verify_export
from engine.receipts.keys import KeyStore, Signer, TrustedKey, TrustSet, format_public_keys, parse_public_keys
from engine.receipts.ledger import Ledger
from engine.receipts.rotation import key_windows, rotate_key
from engine.receipts.synthetic import event_stream
from engine.receipts.verify import FailureKind as K

T0 = 1_769_349_600_000
DAY = 86_400_000


@pytest.fixture
def source(tmp_path):
    keys = KeyStore.init(tmp_path / "src" / "keys", origin="ggen.ledger/export")
    ledger = Ledger.open(tmp_path / "src" / "ledger.sqlite", keys)
    sink = ReceiptSink(ledger, keys, lambda t: {"runbook": "1" * 64})
    events = list(event_stream(seed=9, start_ms=T0, incidents=6))
    sink.append_events(events[:12])
    rotate_key(ledger, keys, now_ms=T0 + DAY)  # part of the history is signed by a retired key
    sink.append_events(events[12:])
    hostile = sink.append_receipt(
        "certificate.issued",
        evidence={"name": "=cmd|' /C calc'!A0", "bio": "\x1b[31mred\x1b[0m [bold]x[/]"},
        observed_at_ms=T0 + 10 * DAY,
        recorded_at_ms=T0 + 10 * DAY,
        summary="-2+3",
    )
    assert hostile
    public = format_public_keys(keys.origin, key_windows(ledger, keys))
    return keys, ledger, public


def _export(ledger: Ledger, keys: KeyStore, fmt: str = "json", since_ms: int | None = None, **kw) -> bytes:
    return render_export(build_export(ledger, keys, since_ms=since_ms, now_ms=T0 + 30 * DAY, **kw), fmt)


def _trust(public: str) -> TrustSet:
    return TrustSet(parse_public_keys(public))


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_verifies_with_only_the_public_key(source, fmt):
    keys, ledger, public = source
    data = _export(ledger, keys, fmt)
    r = verify_export(data, _trust(public))
    assert r.ok, r.failures
    assert r.checked == ledger.size() and r.checkpoint_size == ledger.size()


def test_export_since_selects_whole_incidents(source):
    keys, ledger, public = source
    cutoff = T0 + 5 * DAY  # after every incident: only the certificate (and the key history)
    doc = orjson.loads(_export(ledger, keys, since_ms=cutoff))
    assert [r["receipt"]["kind"] for r in doc["receipts"]] == ["certificate.issued"]
    assert [r["receipt"]["kind"] for r in doc["key_history"]] == ["key.rotated"]
    assert verify_export(orjson.dumps(doc), _trust(public)).ok
    # an incident active in the window comes with all of its receipts, so parents verify
    last_incident = list(ledger.iter_receipts())[-2].incident_id
    first_of_it = ledger.incident_receipts(last_incident)[0]
    doc = orjson.loads(_export(ledger, keys, since_ms=first_of_it.observed_at_ms + 1))
    assert {r["receipt"]["incident_id"] for r in doc["receipts"]} >= {last_incident}
    assert any(r["receipt"]["kind"] == "incident.detected" for r in doc["receipts"])
    assert verify_export(orjson.dumps(doc), _trust(public)).ok


def test_only_the_current_public_key_is_not_enough_for_old_receipts(source):
    keys, ledger, public = source
    current = [k for k in parse_public_keys(public) if k.to_seq is None]
    r = verify_export(_export(ledger, keys), TrustSet(current))
    assert not r.ok and r.first.kind is K.KEY_UNKNOWN


def test_an_unrelated_key_verifies_nothing(source):
    keys, ledger, _ = source
    other = Signer.generate(keys.origin)
    r = verify_export(_export(ledger, keys), TrustSet([TrustedKey(other.name, other.key_id, other.public_key)]))
    assert r.first.kind is K.CHECKPOINT_UNTRUSTED


def test_torn_exports_are_rejected(source):
    keys, ledger, public = source
    trust = _trust(public)
    for fmt in ("json", "jsonl"):
        data = _export(ledger, keys, fmt)
        for cut in range(1, len(data) - 1, max(1, len(data) // 97)):
            r = verify_export(data[:cut], trust)
            assert not r.ok, (fmt, cut)
            assert r.first.kind in (K.EXPORT_MALFORMED, K.CHECKPOINT_MALFORMED, K.CHECKPOINT_UNTRUSTED), (fmt, cut, r.first)


def test_a_jsonl_export_cut_at_a_line_boundary_is_rejected(source):
    keys, ledger, public = source
    lines = _export(ledger, keys, "jsonl").split(b"\n")
    r = verify_export(b"\n".join(lines[:-4]) + b"\n", _trust(public))
    assert r.first.kind is K.EXPORT_MALFORMED


def test_removing_a_receipt_from_the_export_is_caught_by_the_manifest(source):
    keys, ledger, public = source
    doc = orjson.loads(_export(ledger, keys))
    doc["count"] -= 1
    del doc["receipts"][-1]  # the certificate: nobody's parent, so only the manifest notices
    r = verify_export(orjson.dumps(doc), _trust(public))
    assert [f.kind for f in r.failures] == [K.EXPORT_MALFORMED] and "manifest" in r.first.reason


def test_editing_the_readable_copy_is_caught(source):
    keys, ledger, public = source
    doc = orjson.loads(_export(ledger, keys))
    doc["receipts"][0]["receipt"]["severity"] = "Sev4"
    r = verify_export(orjson.dumps(doc), _trust(public))
    assert r.first.kind is K.EXPORT_MALFORMED and r.first.seq == 0


def test_editing_an_envelope_in_the_export_is_caught(source):
    keys, ledger, public = source
    doc = orjson.loads(_export(ledger, keys))
    env = orjson.loads(doc["receipts"][3]["envelope"])
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[10] ^= 0x40
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    doc["receipts"][3]["envelope"] = orjson.dumps(env, option=orjson.OPT_SORT_KEYS).decode()
    r = verify_export(orjson.dumps(doc), _trust(public))
    assert r.failures_for(3)[0].kind is K.SIGNATURE_INVALID


def test_swapping_two_inclusion_proofs_is_caught(source):
    keys, ledger, public = source
    doc = orjson.loads(_export(ledger, keys))
    a, b = doc["receipts"][1], doc["receipts"][6]
    a["inclusion_proof"], b["inclusion_proof"] = b["inclusion_proof"], a["inclusion_proof"]
    r = verify_export(orjson.dumps(doc), _trust(public))
    assert {(f.kind, f.seq) for f in r.failures} == {(K.INCLUSION_FAILED, 1), (K.INCLUSION_FAILED, 6)}


def test_moving_a_receipt_to_another_seq_in_the_export_is_caught(source):
    keys, ledger, public = source
    doc = orjson.loads(_export(ledger, keys))
    last = doc["receipts"][-1]
    last["seq"] += 5
    r = verify_export(orjson.dumps(doc), _trust(public))
    assert r.failures_for(last["seq"])[0].kind is K.PAYLOAD_MISMATCH


def test_consistency_from_the_previous_export(source):
    keys, ledger, public = source
    first = _export(ledger, keys)
    sink = ReceiptSink(ledger, keys)
    sink.append_receipt("certificate.issued", evidence={"n": 2}, observed_at_ms=T0, recorded_at_ms=T0)
    second = orjson.loads(_export(ledger, keys))
    assert second["previous_checkpoint"] == orjson.loads(first)["checkpoint"]
    assert second["consistency_proof"]
    trust = _trust(public)
    assert verify_export(orjson.dumps(second), trust).ok
    # pinning the first export: the second must extend it
    assert verify_export(orjson.dumps(second), trust, pinned=orjson.loads(first)["checkpoint"].encode()).pinned_size == ledger.size() - 1
    broken = dict(second)
    broken["consistency_proof"] = list(reversed(second["consistency_proof"])) + ["AAAA"]
    r = verify_export(orjson.dumps(broken), trust)
    assert r.first.kind is K.PINNED_INCONSISTENT


def test_pinned_checkpoint_newer_than_the_export(source):
    keys, ledger, public = source
    old = _export(ledger, keys)
    ReceiptSink(ledger, keys).append_receipt("certificate.issued", observed_at_ms=T0, recorded_at_ms=T0)
    newer_pin = ledger.latest_checkpoint()
    r = verify_export(old, _trust(public), pinned=newer_pin)
    assert r.first.kind is K.TRUNCATED


def test_export_round_trip_through_the_cli_on_another_data_dir(source, tmp_path):
    """Export on one data dir, verify on a fresh one that has only the public key file."""
    from click.testing import CliRunner

    from console.cli.main import cli

    keys, ledger, public = source
    src = str(tmp_path / "src")
    runner = CliRunner()
    res = runner.invoke(cli, ["--data-dir", src, "incidents", "export", "--format", "json", "--since", "3650d"])
    assert res.exit_code == 0, res.output
    bundle = tmp_path / "incidents.json"
    bundle.write_bytes(res.stdout_bytes)
    res = runner.invoke(cli, ["--data-dir", src, "keys", "export-public", "--output", str(tmp_path / "ggen-keys.pub")])
    assert res.exit_code == 0, res.output
    other = str(tmp_path / "elsewhere")
    res = runner.invoke(cli, ["--data-dir", other, "incidents", "verify", "--export", str(bundle), "--public-key", str(tmp_path / "ggen-keys.pub")])
    assert res.exit_code == 0, res.output
    assert "verified export" in res.output
    # without any key there is nothing to trust
    res = runner.invoke(cli, ["--data-dir", other, "incidents", "verify", "--export", str(bundle)])
    assert res.exit_code == 29
    # and an edited copy fails with the matching exit code and a one-line reason
    doc = orjson.loads(bundle.read_bytes())
    doc["receipts"][0]["receipt"]["summary"] = "nothing happened"
    bundle.write_bytes(orjson.dumps(doc))
    res = runner.invoke(cli, ["--data-dir", other, "incidents", "verify", "--export", str(bundle), "--public-key", str(tmp_path / "ggen-keys.pub")])
    assert res.exit_code == 27
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("ggen: verification failed: [export-malformed]")


def test_csv_is_for_spreadsheets_and_says_so(source):
    keys, ledger, public = source
    data = _export(ledger, keys, "csv").decode()
    first, rest = data.split("\n", 1)
    assert first == CSV_HEADER_LINE and "no signatures or proofs" in first
    rows = list(csv.DictReader(io.StringIO(rest)))
    assert len(rows) == ledger.size()  # no --since: every receipt, the key rotation included
    last = rows[-1]
    assert last["summary"] == "'-2+3"  # formulas are defused
    assert "\x1b" not in data
    r = verify_export(data.encode(), _trust(public))
    assert r.first.kind is K.EXPORT_MALFORMED and "csv" in r.first.reason
