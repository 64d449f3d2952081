"""Key rotation and the key validity windows recorded in the ledger.

``rotate_key`` writes a ``key.rotated`` receipt signed by the outgoing key that names the new
one (key id, public key, fingerprint); the ledger switches to the new key in the same
transaction. The old key's window ends at that receipt's ``seq``; the new key's starts after it.
"""
from __future__ import annotations

import base64

from .keys import KeyInfo, KeyStore, TrustedKey, check_private_key_file
from .ledger import KEY_ROTATED, Ledger, ReceiptDraft, StoredReceipt
from .verify import VerifyReport, apply_rotations


def rotate_key(ledger: Ledger, keys: KeyStore, *, now_ms: int, actor: str = "operator", reason: str = "") -> tuple[StoredReceipt, KeyInfo]:
    """Generate a new key and switch the ledger to it with a signed ``key.rotated`` receipt."""
    ledger.bind(keys)
    old = keys.info(ledger.current_key_id())
    # everything that can refuse is checked before the new key exists: a refused rotation leaves
    # no key behind (the outgoing key must be safe to use and load, it signs the rotation)
    check_private_key_file(keys.private_key_path(old.key_id))
    keys.signer(old.key_id)
    new = keys.new_key(now_ms)
    evidence = {
        "old_key_id": old.key_id,
        "old_key_fingerprint": old.fingerprint,
        "new_key_id": new.key_id,
        "new_public_key": base64.b64encode(new.public_key).decode("ascii"),
        "new_key_fingerprint": new.fingerprint,
    }
    if reason:
        evidence["reason"] = reason
    draft = ReceiptDraft(
        kind=KEY_ROTATED,
        observed_at_ms=now_ms,
        recorded_at_ms=now_ms,
        actor=actor,
        summary=f"signing key {old.key_id} replaced by {new.key_id}",
        source_signal="operator",
        evidence=evidence,
        parents=[],
    )
    try:
        receipt = ledger.append([draft], keys)[0]
    except BaseException:
        keys.discard_key(new.key_id)  # the ledger did not switch to it: nothing refers to it
        raise
    return receipt, new


def key_windows(ledger: Ledger | None, keys: KeyStore) -> list[TrustedKey]:
    """Every key reachable from the genesis key along verified rotations, with its seq window."""
    trust = keys.anchors()
    if ledger is not None and ledger.meta("origin") is not None:
        rotations = [(r.seq, r.envelope) for r in ledger.rotation_receipts()]
        apply_rotations(trust, ledger.origin, rotations, VerifyReport(scope="keys"))
    return sorted(trust.keys.values(), key=lambda k: k.from_seq)
