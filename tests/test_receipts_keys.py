"""The key store: file modes, O_EXCL creation, refusing readable private keys, key ids and
fingerprints, rotation windows recorded in the ledger, and the verifier-key file."""
from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest

from engine.receipts.keys import KeyStore, KeyStoreError, TrustSet, format_public_keys, parse_public_keys
from engine.receipts.ledger import Ledger, LedgerError, ReceiptDraft
from engine.receipts.note import note_key_id
from engine.receipts.rotation import key_windows, rotate_key
from engine.receipts.verify import FailureKind, verify_ledger


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_a_private_directory_and_a_0600_key(tmp_path):
    os.umask(0o022)
    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/t1", now_ms=5)
    assert _mode(tmp_path / "keys") == 0o700
    info = keys.info(keys.genesis_key_id)
    assert _mode(tmp_path / "keys" / info.file) == 0o600
    assert (tmp_path / "keys" / info.file).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    # the key id is the C2SP note key hash of (origin, public key); the fingerprint is SHA-256
    assert info.key_id == note_key_id("ggen.ledger/t1", info.public_key).hex()
    assert info.fingerprint == "SHA256:" + hashlib.sha256(info.public_key).hexdigest()
    # reloading gives the same key, and it signs
    again = KeyStore.open(tmp_path / "keys")
    s = again.signer(info.key_id)
    assert s.public_key == info.public_key and len(s.sign(b"x")) == 64


def test_init_refuses_to_overwrite(tmp_path):
    KeyStore.init(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="already exist"):
        KeyStore.init(tmp_path / "keys")


def test_key_files_are_created_exclusively(tmp_path, monkeypatch):
    keys = KeyStore.init(tmp_path / "keys")
    # a file squatting on the next key's name must not be overwritten
    from engine.receipts import keys as keys_mod

    fixed = keys_mod.Signer.generate(keys.origin)
    monkeypatch.setattr(keys_mod.Signer, "generate", classmethod(lambda cls, name: fixed))
    squat = tmp_path / "keys" / f"ed25519-{fixed.key_id_hex}.key"
    squat.write_bytes(b"attacker")
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        keys.new_key(0)
    assert squat.read_bytes() == b"attacker"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_readable_private_key_is_refused_with_the_fix(tmp_path, mode):
    keys = KeyStore.init(tmp_path / "keys")
    path = keys.private_key_path(keys.genesis_key_id)
    os.chmod(path, mode)
    fresh = KeyStore.open(tmp_path / "keys")
    with pytest.raises(KeyStoreError) as exc:
        fresh.signer(keys.genesis_key_id)
    msg = str(exc.value)
    assert f"{mode:04o}" in msg and f"chmod 600 {path}" in msg
    # the ledger therefore refuses to append with it, and nothing is written
    ledger = Ledger.open(tmp_path / "l.sqlite", fresh)
    with pytest.raises(KeyStoreError):
        ledger.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1)], fresh)
    assert ledger.size() == 0
    os.chmod(path, 0o600)
    assert fresh.signer(keys.genesis_key_id)


def test_a_0400_key_is_fine(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    os.chmod(keys.private_key_path(keys.genesis_key_id), 0o400)
    assert KeyStore.open(tmp_path / "keys").signer(keys.genesis_key_id)


def test_malformed_keyring_is_reported(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    (tmp_path / "keys" / "keyring.json").write_text('{"origin": "x"')
    with pytest.raises(KeyStoreError, match="malformed keyring"):
        KeyStore.open(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="ggen keys init"):
        KeyStore.open(tmp_path / "nothing")
    del keys


def test_rotation_windows_and_signing(tmp_path):
    keys = KeyStore.init(tmp_path / "keys", now_ms=0)
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    d = lambda: ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1)  # noqa: E731
    ledger.append([d(), d(), d()], keys)
    old = ledger.current_key_id()
    receipt, new = rotate_key(ledger, keys, now_ms=10, actor="person:alice", reason="scheduled")
    assert receipt.seq == 3 and receipt.key_id == old  # signed by the old key
    ev = receipt.payload()["evidence"]
    assert ev["new_key_id"] == new.key_id and base64.b64decode(ev["new_public_key"]) == new.public_key
    assert ev["new_key_fingerprint"] == new.fingerprint and ev["reason"] == "scheduled"
    assert ledger.current_key_id() == new.key_id
    later = ledger.append([d()], keys)[0]
    assert later.key_id == new.key_id
    windows = {k.key_id_hex: (k.from_seq, k.to_seq) for k in key_windows(ledger, keys)}
    assert windows == {old: (0, 3), new.key_id: (4, None)}
    # the checkpoint of size 4 (ending with the rotation) is signed by the old key, later ones by the new
    assert ledger.checkpoint_at(4).decode().split("\n")[-2].startswith(f"\u2014 {keys.origin} ")
    assert verify_ledger(ledger, keys.anchors()).ok
    # a second rotation chains on
    rotate_key(ledger, keys, now_ms=20)
    assert verify_ledger(ledger, keys.anchors()).ok
    assert len(key_windows(ledger, keys)) == 3


def test_rotation_must_end_its_batch(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    new = keys.new_key(0)
    rot = ReceiptDraft(
        kind="key.rotated",
        observed_at_ms=1,
        recorded_at_ms=1,
        evidence={"new_key_id": new.key_id, "new_public_key": base64.b64encode(new.public_key).decode()},
    )
    with pytest.raises(LedgerError, match="last of its batch"):
        ledger.append([rot, ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1)], keys)
    assert ledger.size() == 0 and ledger.current_key_id() == keys.genesis_key_id


def test_public_key_file_round_trip_and_errors(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    rotate_key(ledger, keys, now_ms=1)
    text = format_public_keys(keys.origin, key_windows(ledger, keys))
    parsed = parse_public_keys(text)
    assert [(k.key_id_hex, k.from_seq, k.to_seq) for k in parsed] == [(k.key_id_hex, k.from_seq, k.to_seq) for k in key_windows(ledger, keys)]
    assert verify_ledger(ledger, TrustSet(parsed)).ok
    with pytest.raises(KeyStoreError, match="line 1"):
        parse_public_keys("not-a-key 0 1\n")
    with pytest.raises(KeyStoreError, match="holds no verifier keys"):
        parse_public_keys("# only a comment\n")
    line = text.splitlines()[-1].split()[0]
    with pytest.raises(KeyStoreError, match="empty"):
        parse_public_keys(f"{line} 5 2\n")


def test_verify_without_any_key(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    ledger.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1)], keys)
    report = verify_ledger(ledger, TrustSet())
    assert report.exit_code == FailureKind.NO_TRUSTED_KEY.code == 29


def test_two_rotations_racing_from_stale_views(tmp_path):
    """Two `ggen keys rotate` started from the same key: the second must not claim the wrong old key."""
    keys_a = KeyStore.init(tmp_path / "keys")
    keys_b = KeyStore.open(tmp_path / "keys")
    ledger_a = Ledger.open(tmp_path / "l.sqlite", keys_a)
    ledger_b = Ledger.open(tmp_path / "l.sqlite", keys_b)
    new_b = keys_b.new_key(0)  # b prepared its rotation from the genesis key...
    rotate_key(ledger_a, keys_a, now_ms=1)  # ...but a rotated first
    draft = ReceiptDraft(
        kind="key.rotated",
        observed_at_ms=2,
        recorded_at_ms=2,
        evidence={"old_key_id": keys_b.genesis_key_id, "new_key_id": new_b.key_id, "new_public_key": base64.b64encode(new_b.public_key).decode()},
        parents=[],
    )
    with pytest.raises(LedgerError, match="changed meanwhile"):
        ledger_b.append([draft], keys_b)
    assert verify_ledger(ledger_a, keys_a.anchors()).ok
