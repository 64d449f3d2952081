"""Tampering with the ledger (receipts.md section 8), done the way an attacker would: editing the
SQLite file directly, with and without a stolen signing key. Each test asserts the specific
failure kind, so it fails if the check that catches it is removed."""
from __future__ import annotations

import base64
import random
import sqlite3
from pathlib import Path

import orjson
import pytest

from engine.receipts import ReceiptSink
from engine.receipts.canonical import canonical_json
from engine.receipts.dsse import PAYLOAD_TYPE, decode_envelope, encode_envelope, pae
from engine.receipts.keys import KeyStore, Signer
from engine.receipts.ledger import Ledger, ReceiptDraft
from engine.receipts.merkle import MerkleLevels, leaf_hash
from engine.receipts.note import Checkpoint, sign_note
from engine.receipts.rotation import rotate_key
from engine.receipts.synthetic import event_stream
from engine.receipts.verify import FailureKind as K
from engine.receipts.verify import VerifyReport, time_ms, verify_ledger

T0 = 1_769_349_600_000


@pytest.fixture
def world(tmp_path):
    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/tamper")
    ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
    sink = ReceiptSink(ledger, keys, lambda t: {"runbook": "0" * 64})
    events = list(event_stream(seed=3, start_ms=T0, incidents=4))
    for i in range(0, len(events), 3):
        sink.append_events(events[i : i + 3])
    sink.append_receipt("certificate.issued", evidence={"trainee": "alice"}, observed_at_ms=T0, recorded_at_ms=T0)
    assert verify_ledger(ledger, keys.anchors()).ok
    return keys, ledger, sink


# -- attacker tools ------------------------------------------------------------------------------------
def db(ledger: Ledger) -> sqlite3.Connection:
    return sqlite3.connect(ledger.path, isolation_level=None)


def raw_envelope(ledger: Ledger, seq: int) -> bytes:
    return bytes(db(ledger).execute("SELECT envelope FROM receipts WHERE seq = ?", (seq,)).fetchone()[0])


def put_envelope(ledger: Ledger, seq: int, raw: bytes, fix_leaf: bool = True) -> None:
    """Overwrite a stored envelope (and, like a careful attacker, its leaf hash column and the
    index columns the payload names, so only the signed content can give it away)."""
    c = db(ledger)
    if fix_leaf:
        c.execute("UPDATE receipts SET envelope = ?, leaf_hash = ? WHERE seq = ?", (raw, leaf_hash(raw), seq))
        try:
            p = orjson.loads(decode_envelope(raw).payload)
            cols = (p["kind"], p["incident_id"], time_ms(p["observed_at"]), time_ms(p["recorded_at"]), p["key_id"], seq)
        except Exception:
            return
        c.execute("UPDATE receipts SET kind = ?, incident_id = ?, observed_at_ms = ?, recorded_at_ms = ?, key_id = ? WHERE seq = ?", cols)
    else:
        c.execute("UPDATE receipts SET envelope = ? WHERE seq = ?", (raw, seq))


def reseal(ledger: Ledger, signer: Signer) -> None:
    """With a stolen key: recompute the stored tree and sign a checkpoint of the current size."""
    c = db(ledger)
    rows = c.execute("SELECT seq, envelope FROM receipts ORDER BY seq").fetchall()
    leaves = [leaf_hash(bytes(r[1])) for r in rows]
    c.execute("BEGIN")
    for seq, leaf in zip((r[0] for r in rows), leaves):
        c.execute("UPDATE receipts SET leaf_hash = ? WHERE seq = ?", (leaf, seq))
    tree = MerkleLevels(leaves)
    c.execute("DELETE FROM tree_nodes")
    for level in range(1, len(tree.levels)):
        c.executemany("INSERT INTO tree_nodes VALUES (?, ?, ?)", [(level, i, h) for i, h in enumerate(tree.levels[level])])
    # re-sign every stored checkpoint (history included) and add one for the current size
    sizes = {r[0] for r in c.execute("SELECT size FROM checkpoints") if r[0] <= len(leaves)} | {len(leaves)}
    c.execute("DELETE FROM checkpoints")
    for size in sorted(sizes):
        note = sign_note(Checkpoint(ledger.origin, size, tree.root(size)).text(), signer.name, signer.key_id, signer.sign)
        c.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)", (size, tree.root(size), signer.key_id_hex, 0, note))
    c.execute("COMMIT")


def _sign_payload(obj: dict, signer: Signer) -> bytes:
    body = canonical_json(obj)
    return encode_envelope(PAYLOAD_TYPE, body, signer.key_id_hex, signer.sign(pae(PAYLOAD_TYPE, body)))


def resign(ledger: Ledger, seq: int, signer: Signer, mutate) -> None:
    """With a stolen key: change one payload and sign it, then carefully re-sign every later
    receipt so its prev and parent digests follow (as a thorough forger would), then reseal."""
    n = ledger.size()
    obj = orjson.loads(decode_envelope(raw_envelope(ledger, seq)).payload)
    mutate(obj)
    raw = _sign_payload(obj, signer)
    put_envelope(ledger, seq, raw)
    new_leaf = {obj["receipt_id"]: leaf_hash(raw).hex()}
    prev = leaf_hash(raw).hex()
    for later in range(seq + 1, n):
        p = orjson.loads(decode_envelope(raw_envelope(ledger, later)).payload)
        p["prev"] = prev
        for parent in p["parents"]:
            parent["leaf_sha256"] = new_leaf.get(parent["receipt_id"], parent["leaf_sha256"])
        raw = _sign_payload(p, signer)
        put_envelope(ledger, later, raw)
        prev = new_leaf[p["receipt_id"]] = leaf_hash(raw).hex()
    reseal(ledger, signer)


def rebuild(ledger: Ledger, keys: KeyStore, order: list[int], extra: int = 0) -> None:
    """With a stolen key: rewrite history from scratch, keeping receipts ``order`` (re-signed with
    new seq/prev/parents), then ``extra`` new receipts, and swap the file in."""
    payloads = [orjson.loads(decode_envelope(raw_envelope(ledger, s)).payload) for s in order]
    tmp = Path(str(ledger.path) + ".forged")
    forged = Ledger.open(tmp, keys)
    for p in payloads:
        forged.append(
            [
                ReceiptDraft(
                    kind=p["kind"],
                    receipt_id=p["receipt_id"],
                    incident_id=p["incident_id"],
                    incident_type=p["incident_type"],
                    severity=p["severity"],
                    service=p["service"],
                    region=p["region"],
                    source_signal=p["source_signal"],
                    summary=p["summary"],
                    actor=p["actor"],
                    observed_at_ms=time_ms(p["observed_at"]),
                    recorded_at_ms=time_ms(p["recorded_at"]),
                    policy=p["policy"],
                    evidence=p["evidence"],
                    actions=p["actions"],
                    parents=None if p["incident_id"] else [],
                )
            ],
            keys,
        )
    for _ in range(extra):
        forged.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=T0, recorded_at_ms=T0)], keys)
    forged.close()
    path = ledger.path
    ledger.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        if Path(str(tmp) + suffix).exists():
            Path(str(tmp) + suffix).rename(str(path) + suffix)


def kinds(report: VerifyReport) -> list[K]:
    return [f.kind for f in report.failures]


def stolen(keys: KeyStore) -> Signer:
    return keys.signer(keys.genesis_key_id)


# -- without the key --------------------------------------------------------------------------------------
def test_edit_one_payload_byte(world):
    keys, ledger, _ = world
    env = decode_envelope(raw_envelope(ledger, 2))
    payload = env.payload.replace(b'"Sev', b'"SeW', 1)
    assert payload != env.payload
    put_envelope(ledger, 2, encode_envelope(env.payload_type, payload, env.keyid, env.sig))
    r = verify_ledger(ledger, keys.anchors())
    assert r.first.kind is K.SIGNATURE_INVALID and r.first.seq == 2 and r.exit_code == 13
    # the single-receipt check finds it too
    assert verify_ledger(ledger, keys.anchors(), receipt_seqs=[2]).failures_for(2)[0].kind is K.SIGNATURE_INVALID


def test_edit_the_payload_type(world):
    keys, ledger, _ = world
    env = decode_envelope(raw_envelope(ledger, 1))
    put_envelope(ledger, 1, encode_envelope("application/json", env.payload, env.keyid, env.sig))
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(1)[0].kind is K.PAYLOAD_TYPE and r.exit_code == 11


def test_change_the_keyid_hint(world):
    keys, ledger, _ = world
    env = decode_envelope(raw_envelope(ledger, 3))
    put_envelope(ledger, 3, encode_envelope(env.payload_type, env.payload, "deadbeef", env.sig))
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(3)[0].kind is K.KEY_UNKNOWN and r.exit_code == 12


def test_keyid_hint_pointing_at_another_trusted_key(world):
    keys, ledger, _ = world
    _, new = rotate_key(ledger, keys, now_ms=T0)
    env = decode_envelope(raw_envelope(ledger, 0))
    put_envelope(ledger, 0, encode_envelope(env.payload_type, env.payload, new.key_id, env.sig))
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(0)[0].kind is K.SIGNATURE_INVALID


def test_stored_bytes_changed_without_fixing_the_leaf_column(world):
    """Whitespace added to the envelope JSON: same signature, different leaf."""
    keys, ledger, _ = world
    raw = raw_envelope(ledger, 4)
    put_envelope(ledger, 4, raw.replace(b'{"payload"', b'{ "payload"'), fix_leaf=False)
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(4)[0].kind is K.ENVELOPE_MALFORMED
    assert K.INCLUSION_FAILED in kinds(r)


def test_delete_the_last_receipts_without_the_key(world):
    keys, ledger, _ = world
    n = ledger.size()
    db(ledger).execute("DELETE FROM receipts WHERE seq >= ?", (n - 2,))
    r = verify_ledger(ledger, keys.anchors())
    assert r.first.kind is K.TRUNCATED and r.exit_code == 21


def test_checkpoint_signed_by_an_untrusted_key(world):
    keys, ledger, _ = world
    mallory = Signer.generate(ledger.origin)
    reseal(ledger, mallory)  # a checkpoint of the same size, signed by a key nobody trusts
    r = verify_ledger(ledger, keys.anchors())
    assert r.first.kind is K.CHECKPOINT_UNTRUSTED and r.exit_code == 18


def test_edited_old_checkpoint(world):
    keys, ledger, _ = world
    c = db(ledger)
    size, note = c.execute("SELECT size, note FROM checkpoints ORDER BY size LIMIT 1").fetchone()
    lines = bytes(note).decode().split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    c.execute("UPDATE checkpoints SET note = ? WHERE size = ?", ("\n".join(lines).encode(), size))
    r = verify_ledger(ledger, keys.anchors())
    assert kinds(r) == [K.CHECKPOINT_HISTORY]


# -- with a stolen key ----------------------------------------------------------------------------------------
def test_replay_a_receipt_at_another_seq(world):
    keys, ledger, _ = world
    n = ledger.size()
    raw = raw_envelope(ledger, 2)
    db(ledger).execute(
        "INSERT INTO receipts SELECT ?, 'urn:uuid:00000000-0000-4000-8000-000000000000', incident_id, kind, observed_at_ms, recorded_at_ms, key_id, leaf_hash, envelope FROM receipts WHERE seq = 2",
        (n,),
    )
    reseal(ledger, stolen(keys))
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(n)[0].kind is K.PAYLOAD_MISMATCH and r.exit_code == 16
    assert "payload says seq 2 but it is stored at seq" in r.failures_for(n)[0].reason
    assert raw == raw_envelope(ledger, n)


def test_swap_two_receipts_in_place(world):
    """Moved, not duplicated: each envelope is intact and signed, just at the wrong position."""
    keys, ledger, _ = world
    a, b = raw_envelope(ledger, 3), raw_envelope(ledger, 7)
    put_envelope(ledger, 3, b)
    put_envelope(ledger, 7, a)
    reseal(ledger, stolen(keys))
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(3)[0].kind is K.PAYLOAD_MISMATCH and r.failures_for(7)[0].kind is K.PAYLOAD_MISMATCH
    assert "stored at seq 3" in r.failures_for(3)[0].reason


def test_receipt_signed_by_a_key_outside_its_window(world):
    keys, ledger, sink = world
    old = stolen(keys)
    rotate_key(ledger, keys, now_ms=T0)
    n = ledger.size()
    # the thief of the retired key writes a receipt after the rotation
    body = canonical_json(
        {**orjson.loads(decode_envelope(raw_envelope(ledger, n - 1)).payload), "seq": n, "kind": "certificate.issued",
         "receipt_id": "urn:uuid:00000000-0000-4000-8000-00000000000a", "prev": leaf_hash(raw_envelope(ledger, n - 1)).hex(),
         "key_id": old.key_id_hex, "evidence": {}}
    )
    raw = encode_envelope(PAYLOAD_TYPE, body, old.key_id_hex, old.sign(pae(PAYLOAD_TYPE, body)))
    db(ledger).execute(
        "INSERT INTO receipts VALUES (?, ?, NULL, 'certificate.issued', 0, 0, ?, ?, ?)",
        (n, "urn:uuid:00000000-0000-4000-8000-00000000000a", old.key_id_hex, leaf_hash(raw), raw),
    )
    reseal(ledger, old)
    r = verify_ledger(ledger, keys.anchors())
    assert r.failures_for(n)[0].kind is K.KEY_OUTSIDE_WINDOW
    assert K.CHECKPOINT_UNTRUSTED in kinds(r)  # nor may it sign the checkpoint of that size
    single = verify_ledger(ledger, keys.anchors(), receipt_seqs=[n])
    assert single.failures_for(n)[0].kind is K.KEY_OUTSIDE_WINDOW


def _pin(ledger: Ledger) -> bytes:
    raw = ledger.latest_checkpoint()
    assert raw is not None
    return raw


def test_delete_a_receipt_and_resign_is_caught_by_the_pin(world):
    keys, ledger, _ = world
    pinned = _pin(ledger)
    n = ledger.size()
    cert = n - 1  # drop the certificate receipt, then append one more to keep the size
    rebuild(ledger, keys, [s for s in range(n) if s != cert], extra=1)
    forged = Ledger.open(ledger.path, keys)
    assert forged.size() == n
    assert verify_ledger(forged, keys.anchors()).ok  # on its own, the forgery is self-consistent
    r = verify_ledger(forged, keys.anchors(), pinned=pinned)
    assert kinds(r) == [K.PINNED_INCONSISTENT] and r.exit_code == 20
    # the single-receipt path uses a consistency proof and catches it too
    assert verify_ledger(forged, keys.anchors(), receipt_seqs=[0], pinned=pinned).first.kind is K.PINNED_INCONSISTENT


def test_reorder_receipts_and_resign_is_caught_by_the_pin(world):
    keys, ledger, _ = world
    pinned = _pin(ledger)
    n = ledger.size()
    order = list(range(n))
    order[-1], order[-2] = order[-2], order[-1]  # the certificate moves before the last incident receipt
    rebuild(ledger, keys, order)
    forged = Ledger.open(ledger.path, keys)
    assert verify_ledger(forged, keys.anchors()).ok
    r = verify_ledger(forged, keys.anchors(), pinned=pinned)
    assert kinds(r) == [K.PINNED_INCONSISTENT]


def test_truncate_and_resign_is_caught_by_the_pin(world):
    keys, ledger, _ = world
    pinned = _pin(ledger)
    n = ledger.size()
    rebuild(ledger, keys, list(range(n - 3)))
    forged = Ledger.open(ledger.path, keys)
    assert verify_ledger(forged, keys.anchors()).ok
    r = verify_ledger(forged, keys.anchors(), pinned=pinned)
    assert r.first.kind is K.TRUNCATED and r.exit_code == 21


def test_pinned_checkpoint_from_an_untrusted_key(world):
    keys, ledger, _ = world
    mallory = Signer.generate(ledger.origin)
    note = sign_note(Checkpoint(ledger.origin, 1, ledger.root(1)).text(), mallory.name, mallory.key_id, mallory.sign)
    r = verify_ledger(ledger, keys.anchors(), pinned=note)
    assert r.first.kind is K.CHECKPOINT_UNTRUSTED


def test_broken_prev_chain(world):
    keys, ledger, _ = world
    resign(ledger, 5, stolen(keys), lambda p: p.update(prev="0" * 64))
    r = verify_ledger(ledger, keys.anchors())
    assert kinds(r) == [K.PREV_CHAIN] and r.failures[0].seq == 5 and r.exit_code == 22


def _a_follow_up(ledger: Ledger) -> int:
    for rec in ledger.iter_receipts():
        if rec.incident_id and rec.kind != "incident.detected":
            return rec.seq
    raise AssertionError("no follow-up receipt")


def test_parent_that_does_not_exist(world):
    keys, ledger, _ = world
    seq = _a_follow_up(ledger)
    resign(ledger, seq, stolen(keys), lambda p: p["parents"][0].update(receipt_id="urn:uuid:99999999-0000-4000-8000-000000000000"))
    r = verify_ledger(ledger, keys.anchors())
    assert kinds(r) == [K.PARENT_MISSING] and r.exit_code == 23
    assert verify_ledger(ledger, keys.anchors(), receipt_seqs=[seq]).failures_for(seq)[0].kind is K.PARENT_MISSING


def test_parent_with_the_wrong_digest(world):
    keys, ledger, _ = world
    seq = _a_follow_up(ledger)
    resign(ledger, seq, stolen(keys), lambda p: p["parents"][0].update(leaf_sha256="f" * 64))
    r = verify_ledger(ledger, keys.anchors())
    assert kinds(r) == [K.PARENT_DIGEST] and r.exit_code == 24


def test_time_going_backwards_within_an_incident(world):
    keys, ledger, _ = world
    seq = _a_follow_up(ledger)
    resign(ledger, seq, stolen(keys), lambda p: p.update(observed_at="2020-01-01T00:00:00.000Z"))
    r = verify_ledger(ledger, keys.anchors())
    assert kinds(r) == [K.INCIDENT_ORDER] and r.exit_code == 25


def test_recovery_before_mitigation(world):
    keys, ledger, _ = world
    recs = list(ledger.iter_receipts())
    verified = next(r for r in recs if r.kind == "recovery.verified")
    mitigation = next(r for r in recs if r.kind == "mitigation.applied" and r.incident_id == verified.incident_id)
    resign(ledger, mitigation.seq, stolen(keys), lambda p: p.update(kind="recovery.verified"))
    r = verify_ledger(ledger, keys.anchors())
    assert r.first.kind is K.INCIDENT_ORDER and any("comes after recovery.verified" in f.reason for f in r.failures)


def test_incident_without_its_detection(world):
    keys, ledger, _ = world
    resign(ledger, 0, stolen(keys), lambda p: p.update(kind="incident.note"))
    r = verify_ledger(ledger, keys.anchors())
    assert K.INCIDENT_ORDER in kinds(r) and "does not start" in r.first.reason


def test_non_canonical_payload_signed_with_a_stolen_key(world):
    keys, ledger, _ = world
    s = stolen(keys)
    env = decode_envelope(raw_envelope(ledger, 1))
    body = env.payload.replace(b"{", b"{ ", 1)
    put_envelope(ledger, 1, encode_envelope(PAYLOAD_TYPE, body, s.key_id_hex, s.sign(pae(PAYLOAD_TYPE, body))))
    reseal(ledger, s)
    assert verify_ledger(ledger, keys.anchors()).failures_for(1)[0].kind is K.PAYLOAD_MALFORMED


def test_random_single_byte_corruptions_are_always_caught(world):
    keys, ledger, _ = world
    rng = random.Random(5)
    n = ledger.size()
    originals = {s: raw_envelope(ledger, s) for s in range(n)}
    for _ in range(40):
        seq = rng.randrange(n)
        raw = bytearray(originals[seq])
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        put_envelope(ledger, seq, bytes(raw), fix_leaf=rng.random() < 0.5)
        r = verify_ledger(ledger, keys.anchors(), workers=1)
        assert not r.ok and r.failures_for(seq), (seq, kinds(r))
        put_envelope(ledger, seq, originals[seq])
    assert verify_ledger(ledger, keys.anchors()).ok


def test_a_large_ledger_signed_by_nobody_we_trust_fails_fast(tmp_path):
    """Thousands of failures are collected without quadratic work."""
    import time

    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/big")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    for _ in range(10):
        ledger.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=T0, recorded_at_ms=T0) for _ in range(500)], keys)
    stranger = Signer.generate(keys.origin)
    from engine.receipts.keys import TrustedKey, TrustSet

    t = time.perf_counter()
    r = verify_ledger(ledger, TrustSet([TrustedKey(stranger.name, stranger.key_id, stranger.public_key)]), workers=1)
    assert time.perf_counter() - t < 5
    assert r.first.kind is K.CHECKPOINT_UNTRUSTED and len(r.failures) == 5001
    assert all(f.kind is K.KEY_UNKNOWN for f in r.failures[1:])
